/**
 * Recovery codes: ten single-use codes made when a user first enrols a second
 * factor, shown once. Each has 60 random bits in Crockford base32
 * (`XXXX-XXXX-XXXX`: no I, L, O or U to misread), so a keyed SHA-256 (HMAC
 * under a key derived from the operator secret) is enough to store them: no
 * offline guessing without the secret, and no slow hash on the sign-in path.
 */
import { createHmac, randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const RECOVERY_CODE_COUNT = 10;

function randomCode(): string {
  const bytes = randomBytes(12);
  let text = '';
  for (const byte of bytes) text += ALPHABET[byte % 32];
  return `${text.slice(0, 4)}-${text.slice(4, 8)}-${text.slice(8, 12)}`;
}

/** What the user typed, in the stored form: case, spaces and dashes do not matter; I/L read as 1, O as 0. */
export function normaliseRecoveryCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
}

export function hashRecoveryCode(key: Uint8Array, code: string): string {
  return createHmac('sha256', key).update(normaliseRecoveryCode(code)).digest('base64url');
}

export function generateRecoveryCodes(
  key: Uint8Array,
  count = RECOVERY_CODE_COUNT,
): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: count }, randomCode);
  return { codes, hashes: codes.map((code) => hashRecoveryCode(key, code)) };
}
