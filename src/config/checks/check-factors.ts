/** Login policies that cannot be satisfied as written. */
import type { Finding, PoolCheck } from './finding.ts';

export const checkFactors: PoolCheck = (pool) => {
  const { first_factor, second_factor, second_factor_required, passkey_counts_as_two_factors } =
    pool.authentication;
  const findings: Finding[] = [];
  // Recovery codes stand in for a lost passkey; they are no second factor of
  // their own, and a user without one is asked to enrol a passkey.
  if (second_factor_required !== 'never' && !second_factor.includes('passkey')) {
    findings.push({
      path: ['authentication', 'second_factor'],
      message: `second_factor_required is ${second_factor_required}, so second_factor must list passkey (recovery codes only stand in for a lost one)`,
    });
  }
  // A passkey that does not count as two factors needs a second, different
  // credential after it: one passkey cannot be both factors.
  if (
    !passkey_counts_as_two_factors &&
    second_factor_required === 'always' &&
    first_factor.includes('passkey') &&
    pool.passkeys.registration.max_per_user < 2
  ) {
    findings.push({
      path: ['passkeys', 'registration', 'max_per_user'],
      message:
        'with passkey_counts_as_two_factors: false and second_factor_required: always, a user signing in with a passkey needs a second one (max_per_user >= 2)',
    });
  }
  return findings;
};
