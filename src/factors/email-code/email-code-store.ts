/**
 * One-time email codes, bound to their pool and interaction: 6 digits, valid
 * 10 minutes, at most 5 tries, taken exactly once. Only a hash is stored, and
 * a new code for the interaction replaces the previous one. Expiry is judged
 * by the caller's clock (`now`); the store's TTL clears what nobody used.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import type { EphemeralStore } from '../../storage/types.ts';

export const CODE_TTL_SECONDS = 10 * 60;
export const MAX_TRIES = 5;

interface StoredCode {
  email: string;
  hash: string;
  /** Milliseconds since the epoch after which it no longer matches. */
  expiresAt?: number;
}

const codeKey = (poolId: string, uid: string) => `email-code:${poolId}:${uid}`;
const triesKey = (poolId: string, uid: string) => `email-code-tries:${poolId}:${uid}`;
const hashOf = (code: string) => createHash('sha256').update(code).digest('base64url');

/**
 * A fresh code for `email`; the caller mails it. `usable: false` stores a code
 * that never matches (no account, or sign-up closed): the same work and answer
 * as a real one, and the previous code is gone either way.
 */
export async function issueCode(
  store: Pick<EphemeralStore, 'set' | 'delete'>,
  {
    poolId,
    uid,
    email,
    usable = true,
    now = Date.now(),
  }: { poolId: string; uid: string; email: string; usable?: boolean; now?: number },
): Promise<string> {
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  const stored: StoredCode = {
    email,
    hash: usable ? hashOf(code) : 'unusable',
    expiresAt: now + CODE_TTL_SECONDS * 1000,
  };
  await store.delete(triesKey(poolId, uid));
  await store.set(codeKey(poolId, uid), JSON.stringify(stored), CODE_TTL_SECONDS);
  return code;
}

export type CodeCheck =
  | { ok: true; email: string }
  | { ok: false; reason: 'no_code' | 'wrong_code' | 'too_many_tries' | 'already_used'; triesLeft: number };

/**
 * Checks a code. Every try counts, right or wrong; the fifth wrong try
 * destroys the code. A right code is taken atomically, so of two concurrent
 * uses only one succeeds.
 */
export async function redeemCode(
  store: Pick<EphemeralStore, 'get' | 'take' | 'delete' | 'increment'>,
  { poolId, uid, code, now = Date.now() }: { poolId: string; uid: string; code: string; now?: number },
): Promise<CodeCheck> {
  const tries = await store.increment(triesKey(poolId, uid), CODE_TTL_SECONDS);
  const triesLeft = Math.max(0, MAX_TRIES - tries);
  // Past the tries, refused without touching the code: the fifth wrong try destroyed it
  // already, and deleting it here could beat one of the first five tries (the right code,
  // sent from several clients at once) to it, so that none would sign in.
  if (tries > MAX_TRIES) return { ok: false, reason: 'too_many_tries', triesLeft: 0 };
  const raw = await store.get(codeKey(poolId, uid));
  if (raw === undefined) return { ok: false, reason: 'no_code', triesLeft };
  const stored = JSON.parse(raw) as StoredCode;
  if (stored.expiresAt !== undefined && now >= stored.expiresAt)
    return { ok: false, reason: 'no_code', triesLeft };
  const given = Buffer.from(hashOf(code));
  const expected = Buffer.from(stored.hash);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    if (triesLeft === 0) await store.delete(codeKey(poolId, uid));
    return { ok: false, reason: 'wrong_code', triesLeft };
  }
  if ((await store.take(codeKey(poolId, uid))) === undefined)
    return { ok: false, reason: 'already_used', triesLeft };
  return { ok: true, email: stored.email };
}
