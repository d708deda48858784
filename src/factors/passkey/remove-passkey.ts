/**
 * Removing one of a user's passkeys, for self-service and for the recovery
 * step of a sign-in: only while the user keeps a way in (another passkey, or
 * a first factor of the pool that needs no passkey: email codes, or a
 * password the user has set), and under a short per-user lock, so that two
 * removals at once cannot both pass that check and leave the account with no
 * way in. The caller audits and answers.
 */
import type { PoolConfig } from '../../config/types.ts';
import type { DurableStore, EphemeralStore, Passkey } from '../../storage/types.ts';

/** How long the lock may live, should its holder die. */
const LOCK_SECONDS = 10;

export type PasskeyRemoval =
  | { ok: true; passkey: Passkey }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'last_way_in'; passkey: Passkey }
  /** Another change to the user's passkeys holds the lock. */
  | { ok: false; reason: 'busy' };

export async function removePasskey(
  { durable, ephemeral }: { durable: Pick<DurableStore, 'passkeys' | 'users'>; ephemeral: EphemeralStore },
  { pool, userId, id }: { pool: PoolConfig; userId: string; id: string },
): Promise<PasskeyRemoval> {
  const lock = `passkeys:lock:${pool.id}:${userId}`;
  if (!(await ephemeral.setIfAbsent(lock, '1', LOCK_SECONDS))) return { ok: false, reason: 'busy' };
  try {
    const passkeys = await durable.passkeys.listByUser(pool.id, userId);
    const passkey = passkeys.find((candidate) => candidate.id === id);
    if (!passkey) return { ok: false, reason: 'not_found' };
    const { first_factor } = pool.authentication;
    const keepsAWayIn =
      passkeys.length > 1 ||
      first_factor.includes('email_otp') ||
      (first_factor.includes('password') &&
        (await durable.users.getPasswordHash(pool.id, userId)) !== undefined);
    if (!keepsAWayIn) return { ok: false, reason: 'last_way_in', passkey };
    if (!(await durable.passkeys.delete(pool.id, userId, id))) return { ok: false, reason: 'not_found' };
    return { ok: true, passkey };
  } finally {
    await ephemeral.delete(lock);
  }
}
