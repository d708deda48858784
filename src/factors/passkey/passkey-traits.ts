/**
 * A passkey in the login's steps: a credential to sign up with, proof of
 * the account (and so of its email), and a second factor when the account
 * has one more than the first factor used.
 */
import type { FactorTraits } from '../factor.ts';

export const passkeyTraits: FactorTraits = {
  signUpCredential: true,
  waysIn: (account) => account.passkeys > 0,
  provesEmail: true,
  // A step-up's passkey is what is missing: a passkey cannot prove the user before it.
  stepUpProof: () => false,
  // A passkey after a passkey must be another one, so the first does not count.
  secondFactor: ({ account, first }) => account.passkeys >= (first.method === 'passkey' ? 2 : 1),
};
