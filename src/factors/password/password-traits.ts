/**
 * A password in the login's steps: a credential to sign up with, and proof
 * of a signed-in user who has one before a step-up. It proves nothing about
 * the email: whoever learnt it must not enrol the account's passkey.
 */
import type { FactorTraits } from '../factor.ts';

export const passwordTraits: FactorTraits = {
  signUpCredential: true,
  waysIn: (account) => account.hasPassword,
  provesEmail: false,
  stepUpProof: (account) => account.hasPassword,
  secondFactor: () => false,
};
