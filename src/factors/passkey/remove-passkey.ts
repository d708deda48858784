/**
 * Removing one of a user's passkeys, for self-service and for the recovery
 * step of a sign-in: only while the user keeps a way in (another passkey, or
 * a first factor of the pool that needs no passkey: email codes, or a
 * password the user has set), and never when it would leave the account no
 * second factor while one is required (the pool always asks for one, or an
 * organization of the user's requires MFA; ../leaves-no-second-factor.ts):
 * an authenticator app the user keeps stands in for the passkey, recovery
 * codes do not (they are a lost passkey's fallback), and a password must not
 * become enough to re-enrol one. All under the user's factor lock
 * (../factor-lock.ts, which removing the authenticator app takes too), so
 * that two removals at once cannot both pass those checks.
 * An operator (the admin API) may remove any passkey, the last one too: they
 * recover accounts, and give the user a new way in with an enrolment link.
 * The caller audits and answers.
 */
import type { PoolConfig } from '../../config/types.ts';
import { lastSecondFactor, lastWayIn, type PosternError } from '../../errors.ts';
import type { Account, DurableStore, EphemeralStore, Passkey } from '../../storage/types.ts';
import { accountFactsOf } from '../factor.ts';
import { FACTORS_BUSY, withFactorLock } from '../factor-lock.ts';
import { leavesNoSecondFactor } from '../leaves-no-second-factor.ts';
import { FACTOR_TRAITS } from '../traits.ts';

export type PasskeyRemoval =
  | { ok: true; passkey: Passkey }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'last_way_in'; passkey: Passkey }
  /** A second factor is required, and this passkey is the user's last one. */
  | { ok: false; reason: 'last_second_factor'; passkey: Passkey }
  /** Another change to the user's second factors holds the lock. */
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
  const removal = await withFactorLock(
    ephemeral,
    { poolId: pool.id, userId },
    async (): Promise<PasskeyRemoval> => {
      const passkeys = await durable.passkeys.listByUser(pool.id, userId);
      const passkey = passkeys.find((candidate) => candidate.id === id);
      if (!passkey) return { ok: false, reason: 'not_found' };
      if (!byOperator) {
        const account = await durable.users.findAccount(pool.id, userId);
        if (!account) return { ok: false, reason: 'not_found' };
        // Counted from the list read under the lock, as the way-in check is.
        const held = { ...account, passkeys: passkeys.length };
        if (leavesNoSecondFactor(pool, held, 'passkey'))
          return { ok: false, reason: 'last_second_factor', passkey };
        // Another passkey, or a first factor that lets the account in without this one
        // (email codes always; a password when the user has one).
        if (passkeys.length === 1 && !otherWayIn(pool, held))
          return { ok: false, reason: 'last_way_in', passkey };
      }
      if (!(await durable.passkeys.delete(pool.id, userId, id))) return { ok: false, reason: 'not_found' };
      return { ok: true, passkey };
    },
  );
  return removal === FACTORS_BUSY ? { ok: false, reason: 'busy' } : removal;
}

function otherWayIn(pool: PoolConfig, account: Account): boolean {
  const others = pool.authentication.first_factor.filter((method) => method !== 'passkey');
  // Passkeys aside: the question is whether the other factors let the account in.
  const facts = { ...accountFactsOf(account), passkeys: 0 };
  return others.some((method) => FACTOR_TRAITS[method].waysIn(facts));
}

/** The error a refused removal answers with (409): which rule kept the passkey. */
export function removalRefused(reason: 'last_way_in' | 'last_second_factor'): PosternError {
  return reason === 'last_second_factor' ? lastSecondFactor() : lastWayIn();
}
