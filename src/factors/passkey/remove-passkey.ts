/**
 * Removing one of a user's passkeys, for self-service and for the recovery
 * step of a sign-in: only while the user keeps a way in (another passkey, or
 * a first factor of the pool that needs no passkey: email codes, or a
 * password the user has set), and, in a pool that always asks for a second
 * factor, never the last passkey: it is the user's only second factor
 * (recovery codes stand in for a lost one, they are none of their own), and
 * a password must not become enough to re-enrol one. All under a short
 * per-user lock, so that two removals at once cannot both pass that check.
 * An operator (the admin API) may remove any passkey, the last one too: they
 * recover accounts, and give the user a new way in with an enrolment link.
 * The caller audits and answers.
 */
import type { PoolConfig } from '../../config/types.ts';
import { lastSecondFactor, lastWayIn, type PosternError } from '../../errors.ts';
import type { DurableStore, EphemeralStore, Passkey } from '../../storage/types.ts';
import { accountFactsOf } from '../factor.ts';
import { FACTOR_TRAITS } from '../traits.ts';

/** How long the lock may live, should its holder die. */
const LOCK_SECONDS = 10;

export type PasskeyRemoval =
  | { ok: true; passkey: Passkey }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'last_way_in'; passkey: Passkey }
  /** The pool always asks for a second factor and this is the user's last. */
  | { ok: false; reason: 'last_second_factor'; passkey: Passkey }
  /** Another change to the user's passkeys holds the lock. */
  | { ok: false; reason: 'busy' };

export async function removePasskey(
  { durable, ephemeral }: { durable: Pick<DurableStore, 'passkeys' | 'users'>; ephemeral: EphemeralStore },
  {
    pool,
    userId,
    id,
    byOperator = false,
  }: {
    pool: PoolConfig;
    userId: string;
    id: string;
    /** (Optional) An operator's removal, which keeps no way in. Defaults to false: the user's own. */
    byOperator?: boolean;
  },
): Promise<PasskeyRemoval> {
  const lock = `passkeys:lock:${pool.id}:${userId}`;
  if (!(await ephemeral.setIfAbsent(lock, '1', LOCK_SECONDS))) return { ok: false, reason: 'busy' };
  try {
    const passkeys = await durable.passkeys.listByUser(pool.id, userId);
    const passkey = passkeys.find((candidate) => candidate.id === id);
    if (!passkey) return { ok: false, reason: 'not_found' };
    if (byOperator)
      return (await durable.passkeys.delete(pool.id, userId, id))
        ? { ok: true, passkey }
        : { ok: false, reason: 'not_found' };
    const { second_factor_required } = pool.authentication;
    if (passkeys.length === 1 && second_factor_required === 'always')
      return { ok: false, reason: 'last_second_factor', passkey };
    // Another passkey, or a first factor that lets the account in without this one
    // (email codes always; a password when the user has one).
    const keepsAWayIn = passkeys.length > 1 || (await otherWayIn(durable, pool, userId));
    if (!keepsAWayIn) return { ok: false, reason: 'last_way_in', passkey };
    if (!(await durable.passkeys.delete(pool.id, userId, id))) return { ok: false, reason: 'not_found' };
    return { ok: true, passkey };
  } finally {
    await ephemeral.delete(lock);
  }
}

async function otherWayIn(
  durable: Pick<DurableStore, 'users'>,
  pool: PoolConfig,
  userId: string,
): Promise<boolean> {
  const others = pool.authentication.first_factor.filter((method) => method !== 'passkey');
  if (others.length === 0) return false;
  const account = await durable.users.findAccount(pool.id, userId);
  if (!account) return false;
  // Passkeys aside: the question is whether the other factors let the account in.
  const facts = { ...accountFactsOf(account), passkeys: 0 };
  return others.some((method) => FACTOR_TRAITS[method].waysIn(facts));
}

/** The error a refused removal answers with (409): which rule kept the passkey. */
export function removalRefused(reason: 'last_way_in' | 'last_second_factor'): PosternError {
  return reason === 'last_second_factor' ? lastSecondFactor() : lastWayIn();
}
