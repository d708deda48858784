/**
 * `PUT /{pool}/api/self/password`: set a first password, or change one,
 * where the pool signs users in with passwords. The new password follows the
 * pool's rules (src/accounts/password-rules.ts), as at sign-up.
 *
 * A change needs the current password, and wrong ones are limited per
 * account: a stolen but recent token must not become a way to guess it. A
 * change signs the user out everywhere else (the old password may be known
 * to someone); a first password adds a way in and signs nobody out.
 */
import { argon2Of, assertAcceptablePassword } from '../accounts/password-rules.ts';
import type { PoolConfig } from '../config/types.ts';
import { errorOf, invalidRequest } from '../errors.ts';
import { hashPassword, verifyPassword } from '../factors/password/password-hasher.ts';
import { refusal } from '../factors/refusal-codes.ts';
import type { RateLimitRule } from '../storage/types.ts';
import {
  type SelfServiceContext,
  type SelfServiceScope,
  type SignedOutView,
  signOutOthers,
  writerOf,
} from './self-service-scope.ts';

/** Wrong current passwords for one account, per the pool's failure window, before changing pauses. */
const CURRENT_PASSWORD_ATTEMPTS = 5;

/** Counts every try at the current password (a right one resets it), per user of the pool. */
const currentPasswordRule = (pool: PoolConfig): RateLimitRule => ({
  name: `self_service_password:${pool.id}`,
  points: CURRENT_PASSWORD_ATTEMPTS,
  windowSeconds: pool.authentication.password.failure_window,
});

export function selfPassword(context: SelfServiceContext) {
  const { durable, limits } = context;
  return {
    /**
     * Sets a password, or changes it (then `current_password` must match).
     * @throws {PosternError} invalid_request where passwords are not used or the current one is missing;
     *   invalid_credentials for a wrong current password; weak_password; rate_limited.
     */
    async setPassword(
      scope: SelfServiceScope,
      { password, current_password }: { password: string; current_password?: string },
    ): Promise<{ signed_out: SignedOutView }> {
      const user = await writerOf(context, scope);
      const { pool } = scope;
      if (!pool.authentication.first_factor.includes('password'))
        throw invalidRequest('This service does not use passwords.');
      assertAcceptablePassword(pool, user.email, password);

      const stored = await durable.users.getPasswordHash(pool.id, user.id);
      if (stored !== undefined) {
        if (current_password === undefined) throw invalidRequest('Enter your current password.');
        const rule = currentPasswordRule(pool);
        await limits.enforce(rule, user.id, () =>
          scope.audit.record({
            event: 'rate_limited',
            outcome: 'failure',
            detail: { limit: 'self_service_password' },
          }),
        );
        if (!(await verifyPassword(stored, current_password))) {
          scope.audit.record({
            event: 'password_changed',
            outcome: 'failure',
            detail: refusal('wrong_current_password', 'wrong current password'),
          });
          throw errorOf('invalid_credentials', { description: 'Your current password is not correct.' });
        }
        await limits.reset(rule, user.id);
      }

      await durable.users.setPasswordHash(pool.id, user.id, await hashPassword(password, argon2Of(pool)));
      scope.audit.record({
        event: 'password_changed',
        outcome: 'success',
        detail: { first_password: stored === undefined },
      });
      if (stored === undefined) return { signed_out: { sessions: 0, apps: 0 } };
      return { signed_out: await signOutOthers(context, scope, 'password_changed') };
    },
  };
}
