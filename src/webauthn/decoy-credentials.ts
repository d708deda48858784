/**
 * Plausible credential ids for an email that has no passkeys (or no account),
 * so classic-mode options never tell whether an account exists. They are
 * derived with an HMAC from the email, so asking twice gives the same answer,
 * as it would for a real user.
 */
import { createHmac } from 'node:crypto';

export function decoyCredentials(
  key: Uint8Array,
  poolId: string,
  email: string,
): Array<{ credentialId: string; transports: string[] }> {
  const seed = createHmac('sha256', key).update(`${poolId}\0${email}`).digest();
  const count = 1 + ((seed[0] ?? 0) % 2);
  return Array.from({ length: count }, (_, index) => ({
    credentialId: createHmac('sha256', key)
      .update(`${poolId}\0${email}\0${index}`)
      .digest()
      .toString('base64url'),
    transports: ['hybrid', 'internal'],
  }));
}
