/**
 * `GET /{pool}/api/self`: who the token speaks for, and which of their
 * sign-in methods this pool lets them manage on the account page. Reading
 * needs no recent authentication.
 */
import { poolUsesRecoveryCodes } from '../factors/recovery-code/issue-recovery-codes.ts';
import { passkeyRulesFor } from '../organizations/member-passkeys.ts';
import { type SelfServiceContext, type SelfServiceScope, userOf } from './self-service-scope.ts';

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
  const { durable } = context;
  return {
    /** Who the token speaks for and what they can manage here. */
    async summary(scope: SelfServiceScope): Promise<AccountSummary> {
      const user = await userOf(context, scope);
      const { pool } = scope;
      const [passwordHash, remaining, totp, passkeyRules] = await Promise.all([
        durable.users.getPasswordHash(pool.id, user.id),
        durable.recoveryCodes.countUnused(pool.id, user.id),
        durable.totp.find(pool.id, user.id),
        passkeyRulesFor(durable.users, pool, user.id),
      ]);
      return {
        email: user.email,
        passkeys: { enabled: passkeyRules.allowed },
        password: {
          enabled: pool.authentication.first_factor.includes('password'),
          set: passwordHash !== undefined,
          min_length: pool.authentication.password.min_length,
        },
        recovery_codes: { enabled: poolUsesRecoveryCodes(pool.authentication), remaining },
        totp: { enabled: pool.authentication.second_factor.includes('totp'), set: totp !== undefined },
        recent_auth: pool.self_service.recent_auth,
      };
    },
  };
}
