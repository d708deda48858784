/**
 * TOTP in the login's steps: a second factor only, for a user who enrolled
 * one. It never meets a step-up by itself (only a passkey makes acr phr,
 * which is judged after the second factor), but a request for phr does not
 * drop it either: a second factor owed stays owed. Where the pool says so (`passkey_supersedes_totp`, the default) a passkey the user
 * could use as their second factor is asked for instead: once a user has a
 * passkey, their codes are no longer offered (Ente's rule).
 */
import type { FactorTraits } from '../factor.ts';

export const totpTraits: FactorTraits = {
  signUpCredential: false,
  waysIn: () => false,
  provesEmail: false,
  stepUpProof: () => false,
  secondFactor: ({ account, passkeyUsable, passkeySupersedesTotp }) =>
    account.hasTotp && !(passkeySupersedesTotp && passkeyUsable),
};
