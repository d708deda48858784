/** Login policies that cannot be satisfied as written. */
import type { Finding, PoolCheck } from './finding.ts';

export const checkFactors: PoolCheck = (pool, _server, file) => {
  const { first_factor, second_factor, second_factor_required, passkey_counts_as_two_factors } =
    pool.authentication;
  const findings: Finding[] = [];
  // A second factor listed in the file that no sign-in will ever ask for
  // promises users a way in (or a fallback) that does not exist. In a pool
  // that never asks, the list is what organizations that require MFA ask for.
  const listed = (file as { authentication?: { second_factor?: unknown } } | null)?.authentication
    ?.second_factor;
  if (Array.isArray(listed) && listed.length > 0 && !secondFactorAsked(pool)) {
    findings.push({
      path: ['authentication', 'second_factor'],
      message:
        'lists methods no sign-in will ever ask for: every first factor is a passkey with user verification, which counts as two factors (add email_otp or password to first_factor, or set passkey_counts_as_two_factors: false)',
    });
  }
  // Recovery codes are issued and accepted only where sign-ins may ask for a
  // second factor (issue-recovery-codes.ts): in a pool that never asks, an
  // organization's require_mfa enrols its members a passkey, but no codes.
  // (The default list names them; only a file's own list promises them.)
  if (second_factor_required === 'never' && Array.isArray(listed) && listed.includes('recovery_code')) {
    findings.push({
      path: ['authentication', 'second_factor'],
      message:
        'lists recovery_code, which no user of this pool ever gets: second_factor_required is never (remove recovery_code, or set second_factor_required to when_enrolled or always)',
    });
  }
  // Recovery codes stand in for a lost passkey; they are no second factor of
  // their own. `always` makes a user without a second factor enrol one in
  // the login, which is a passkey; `when_enrolled` can rest on TOTP, which
  // users enrol on the account page.
  const satisfiable =
    second_factor.includes('passkey') ||
    (second_factor_required === 'when_enrolled' && second_factor.includes('totp'));
  if (second_factor_required !== 'never' && !satisfiable) {
    findings.push({
      path: ['authentication', 'second_factor'],
      message:
        second_factor_required === 'always'
          ? 'second_factor_required is always, so second_factor must list passkey, which a user without a second factor enrols in the login (recovery codes only stand in for a lost one)'
          : 'second_factor_required is when_enrolled, so second_factor must list passkey or totp (recovery codes only stand in for a lost passkey)',
    });
  }
  // Switched off, passkeys are in no sign-in: what is left must let users in,
  // and nothing may require the second factor only a passkey provides.
  if (!pool.passkeys.enabled) {
    if (first_factor.every((method) => method === 'passkey')) {
      findings.push({
        path: ['passkeys', 'enabled'],
        message:
          'is false, which leaves no first factor: add email_otp or password to authentication.first_factor',
      });
    }
    const totpLeft = second_factor_required === 'when_enrolled' && second_factor.includes('totp');
    if (second_factor_required !== 'never' && !totpLeft) {
      findings.push({
        path: ['passkeys', 'enabled'],
        message: `is false, which leaves no second factor for second_factor_required: ${second_factor_required} (set it to never, or when_enrolled with totp among the second factors)`,
      });
    }
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

/**
 * Whether any sign-in in this pool can reach a second-factor step: one is
 * required at all, and some first factor leaves it owed (a passkey verified
 * with user verification counts as both, where the pool says so).
 */
function secondFactorAsked(pool: Parameters<PoolCheck>[0]): boolean {
  const { first_factor, passkey_counts_as_two_factors } = pool.authentication;
  const passkeyIsBoth = passkey_counts_as_two_factors && pool.passkeys.user_verification === 'required';
  return first_factor.some((method) => method !== 'passkey') || !passkeyIsBoth;
}
