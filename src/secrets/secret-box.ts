/**
 * Encryption at rest for small secrets (signing keys): AES-256-GCM under a key
 * derived from POSTERN_SECRET. The associated data binds a ciphertext to the
 * row it belongs to, so a value copied to another row does not decrypt.
 * Format: `v1.<iv>.<ciphertext+tag>`, base64url.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { deriveKey } from './derive-key.ts';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SecretBox {
  seal(plaintext: string, associatedData: string): string;
  /** @throws {Error} when the value was tampered with, belongs to another row, or another secret sealed it. */
  open(sealed: string, associatedData: string): string;
}

export function createSecretBox(secret: string, purpose: string): SecretBox {
  const key = deriveKey(secret, purpose);
  return {
    seal(plaintext, associatedData) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(associatedData));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed, associatedData) {
      const [version, ivPart, bodyPart] = sealed.split('.');
      if (version !== 'v1' || !ivPart || !bodyPart) throw new Error('unknown sealed value format');
      const body = Buffer.from(bodyPart, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivPart, 'base64url'))
        .setAAD(Buffer.from(associatedData))
        .setAuthTag(body.subarray(body.length - TAG_BYTES));
      try {
        return Buffer.concat([
          decipher.update(body.subarray(0, body.length - TAG_BYTES)),
          decipher.final(),
        ]).toString('utf8');
      } catch (cause) {
        throw new Error('sealed value does not open with this secret (was POSTERN_SECRET changed?)', {
          cause,
        });
      }
    },
  };
}
