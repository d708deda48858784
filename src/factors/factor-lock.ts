/**
 * The short per-user lock every change to a user's second factors by the
 * user takes (removing a passkey, removing the authenticator app): the rules
 * they check (the last way in, the last second factor) read what the account
 * holds, and two removals at once must not both pass them, each counting the
 * other's factor as still there. A lock in the ephemeral store, not a
 * database transaction: the factors live in different tables, and a removal
 * that finds it taken answers "try again" rather than waiting.
 */
import type { EphemeralStore } from '../storage/types.ts';

/** How long the lock may live, should its holder die. */
const LOCK_SECONDS = 10;

/** Sentinel: another change to the user's second factors holds the lock. */
export const FACTORS_BUSY = Symbol('factors busy');

/**
 * Runs `run` holding the user's lock, and releases it.
 * @returns what `run` returns, or FACTORS_BUSY when another change holds the lock.
 */
export async function withFactorLock<T>(
  ephemeral: EphemeralStore,
  { poolId, userId }: { poolId: string; userId: string },
  run: () => Promise<T>,
): Promise<T | typeof FACTORS_BUSY> {
  // The key predates TOTP removal, when only passkeys were removed under it.
  const lock = `passkeys:lock:${poolId}:${userId}`;
  if (!(await ephemeral.setIfAbsent(lock, '1', LOCK_SECONDS))) return FACTORS_BUSY;
  try {
    return await run();
  } finally {
    await ephemeral.delete(lock);
  }
}
