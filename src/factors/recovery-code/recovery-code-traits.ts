/**
 * A recovery code in the login's steps: the fallback of a passkey, not a
 * factor of its own. It is offered beside a passkey the user could use,
 * never instead of one (codes alone would turn every sign-in into a
 * recovery and spend a code each time), and never to meet a step-up (a
 * recovery sign-in is acr 0).
 */
import type { FactorTraits } from '../factor.ts';

export const recoveryCodeTraits: FactorTraits = {
  signUpCredential: false,
  // A second factor only: it never signs anyone in alone.
  waysIn: () => false,
  provesEmail: false,
  stepUpProof: () => false,
  secondFactor: ({ account, passkeyUsable, stepUp }) => passkeyUsable && account.hasRecoveryCodes && !stepUp,
};
