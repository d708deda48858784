/** An email code in the login's steps: it proves the email, and the signed-in user before a step-up. */
import type { FactorTraits } from '../factor.ts';

export const emailCodeTraits: FactorTraits = {
  signUpCredential: false,
  // Every account has its email.
  waysIn: () => true,
  provesEmail: true,
  stepUpProof: () => true,
  secondFactor: () => false,
};
