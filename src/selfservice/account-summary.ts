/**
 * `GET /{pool}/api/self`: who the token speaks for, and which of their
 * sign-in methods this pool lets them manage on the account page. Reading
 * needs no recent authentication.
 */
import { poolUsesRecoveryCodes } from '../factors/recovery-code/issue-recovery-codes.ts';
import { passkeysAllowedFor } from '../organizations/org-policy.ts';
import { accountOf, type SelfServiceContext, type SelfServiceScope } from './self-service-scope.ts';

export interface AccountSummary {
  email: string;
  /**
   * Whether the user may add passkeys (the pool uses them, and none of their
   * organizations switched them off): where not, the stored ones are listed, none can be added.
   */
  passkeys: { enabled: boolean };
  password: { enabled: boolean; set: boolean; min_length: number };
  recovery_codes: { enabled: boolean; remaining: number };
  /** An authenticator app (TOTP) as a second factor: whether the pool takes one, and whether one is set. */
  totp: { enabled: boolean; set: boolean };
  /** Seconds a sign-in stays recent enough for writes. */
  recent_auth: number;
}

export function accountSummary(context: SelfServiceContext) {
  return {
    /** Who the token speaks for and what they can manage here: one query (users.findAccount). */
    async summary(scope: SelfServiceScope): Promise<AccountSummary> {
      const account = await accountOf(context, scope);
      const { pool } = scope;
      return {
        email: account.user.email,
        passkeys: { enabled: passkeysAllowedFor(pool, account) },
        password: {
          enabled: pool.authentication.first_factor.includes('password'),
          set: account.hasPassword,
          min_length: pool.authentication.password.min_length,
        },
        recovery_codes: {
          enabled: poolUsesRecoveryCodes(pool.authentication),
          remaining: account.unusedRecoveryCodes,
        },
        totp: { enabled: pool.authentication.second_factor.includes('totp'), set: account.hasTotp },
        recent_auth: pool.self_service.recent_auth,
      };
    },
  };
}
