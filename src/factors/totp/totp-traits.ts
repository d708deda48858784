/**
 * TOTP in the login's steps: a second factor only, for a user who enrolled
 * one. It never meets a step-up (only a passkey makes acr phr), and where the
 * pool says so (`passkey_supersedes_totp`, the default) a passkey the user
 * could use as their second factor is asked for instead: once a user has a
 * passkey, their codes are no longer offered (Ente's rule).
 */
import type { FactorTraits } from '../factor.ts';

export const totpTraits: FactorTraits = {
  signUpCredential: false,
  waysIn: () => false,
  provesEmail: false,
  stepUpProof: () => false,
  secondFactor: ({ account, passkeyUsable, stepUp, passkeySupersedesTotp }) =>
    account.hasTotp && !stepUp && !(passkeySupersedesTotp && passkeyUsable),
};
