/**
 * Derives independent keys from the one operator secret (HKDF-SHA256,
 * RFC 5869), so encrypting signing keys and signing cookies never share key
 * material, and each pool's cookie keys differ.
 */
import { hkdfSync } from 'node:crypto';

const SALT = 'postern/v1';

/** 32 bytes for `purpose` (e.g. `signing-key-encryption`, `cookies:demo`). */
export function deriveKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, SALT, purpose, 32));
}
