/**
 * The last second factor rule (issue 8, item 3): a user's own removal of a
 * second factor (a passkey, the authenticator app) is refused when it would
 * leave the account none while one is required: by the pool
 * (`second_factor_required: always`) or by any organization of the user's
 * (`require_mfa`, src/organizations/org-policy.ts). Otherwise a first factor
 * alone (a password, an email code) would be enough to sign in, and to enrol
 * a second factor of the attacker's own.
 *
 * What counts as a second factor is what the organization service requires
 * a member to be able to have (src/organizations/organization-service.ts): a
 * passkey where the login may use passkeys (the pool uses them, and, for an
 * organization, its passkey login is on), or an authenticator app where the
 * pool lists `totp`. Recovery codes are a passkey's fallback, not a factor of
 * their own.
 *
 * The caller decides under the per-user lock (./factor-lock.ts), so that two
 * removals at once cannot each count the other as still there. Operators
 * (the admin API) are not held to it.
 */
import { passkeysInUse } from '../accounts/passkey-policies.ts';
import type { PoolConfig } from '../config/types.ts';
import type { Account } from '../storage/types.ts';

/** What a removal takes away: one passkey, or the authenticator app. */
export type SecondFactorRemoval = 'passkey' | 'totp';

/**
 * Whether removing `removing` leaves `account` no second factor while one is
 * required. `account` is read under the lock, before the removal.
 */
export function leavesNoSecondFactor(
  pool: PoolConfig,
  account: Pick<Account, 'passkeys' | 'hasTotp' | 'organizations'>,
  removing: SecondFactorRemoval,
): boolean {
  const passkeysLeft = account.passkeys - (removing === 'passkey' ? 1 : 0);
  const totpLeft = removing === 'totp' ? false : account.hasTotp;
  const totpUsable = pool.authentication.second_factor.includes('totp');
  const keepsOne = (passkeysUsable: boolean) =>
    (passkeysUsable && passkeysLeft > 0) || (totpUsable && totpLeft);

  const poolPasskeys = passkeysInUse(pool);
  if (pool.authentication.second_factor_required === 'always' && !keepsOne(poolPasskeys)) return true;
  return account.organizations.some(
    (organization) => organization.requireMfa && !keepsOne(poolPasskeys && organization.passkeyLogin),
  );
}
