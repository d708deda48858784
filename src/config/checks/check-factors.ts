/** Login policies that cannot be satisfied as written. */
import type { Finding, PoolCheck } from './finding.ts';

export const checkFactors: PoolCheck = (pool) => {
  const { second_factor, second_factor_required } = pool.authentication;
  const findings: Finding[] = [];
  if (second_factor_required !== 'never' && second_factor.length === 0) {
    findings.push({
      path: ['authentication', 'second_factor'],
      message: `second_factor_required is ${second_factor_required} but no second factor is listed`,
    });
  }
  // A passkey that does not count as two factors needs a second, different
  // credential after it: one passkey cannot be both factors.
  if (
    !pool.authentication.passkey_counts_as_two_factors &&
    second_factor_required === 'always' &&
    pool.authentication.first_factor.includes('passkey') &&
    pool.passkeys.registration.max_per_user < 2 &&
    !second_factor.includes('recovery_code')
  ) {
    findings.push({
      path: ['passkeys', 'registration', 'max_per_user'],
      message:
        'with passkey_counts_as_two_factors: false and second_factor_required: always, a user signing in with a passkey needs a second one (max_per_user >= 2) or recovery codes',
    });
  }
  return findings;
};
