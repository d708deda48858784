/**
 * Plausible credential ids for an email that has no passkeys (or no account),
 * so classic-mode options never tell whether an account exists. They are
 * derived with an HMAC from the email, so asking twice gives the same answer,
 * as it would for a real user, and they vary the way real users' lists do:
 * how many passkeys (one to five, fewer more often), the id lengths of common
 * authenticators and their transports. A list no decoy could take (six
 * passkeys, an unusual id length) still stands out; the mix below covers the
 * common ones.
 */
import { createHmac } from 'node:crypto';

/** How many passkeys a decoy has: a byte of the HMAC picks one, so 1 is likeliest. */
const COUNTS = [
  [128, 1],
  [192, 2],
  [224, 3],
  [244, 4],
  [256, 5],
] as const;

/** Credential shapes seen from common authenticators: id length in bytes and transports. */
const SHAPES: ReadonlyArray<{ bytes: number; transports: string[] }> = [
  { bytes: 16, transports: ['hybrid', 'internal'] }, // Google Password Manager
  { bytes: 20, transports: ['hybrid', 'internal'] }, // iCloud Keychain
  { bytes: 32, transports: ['internal'] }, // Windows Hello
  { bytes: 32, transports: ['hybrid', 'internal'] }, // password managers
  { bytes: 64, transports: ['nfc', 'usb'] }, // security keys
  { bytes: 64, transports: ['usb'] },
];

export function decoyCredentials(
  key: Uint8Array,
  poolId: string,
  email: string,
): Array<{ credentialId: string; transports: string[] }> {
  const derive = (label: string, bytes: number) => {
    const out = Buffer.alloc(bytes);
    for (let offset = 0, block = 0; offset < bytes; offset += 32, block += 1) {
      createHmac('sha256', key).update(`${poolId}\0${email}\0${label}\0${block}`).digest().copy(out, offset);
    }
    return out;
  };
  const seed = derive('seed', 32);
  const pick = seed[0] ?? 0;
  const count = COUNTS.find(([below]) => pick < below)?.[1] ?? 1;
  return Array.from({ length: count }, (_, index) => {
    // The index is taken modulo the length, so it is always in range.
    const shape = SHAPES[(seed[1 + index] ?? 0) % SHAPES.length] as (typeof SHAPES)[number];
    return {
      credentialId: derive(`credential ${index}`, shape.bytes).toString('base64url'),
      transports: [...shape.transports],
    };
  });
}
