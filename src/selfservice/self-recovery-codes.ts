/**
 * `POST /{pool}/api/self/recovery-codes`: ten new recovery codes in place of
 * the old set, which stops working, shown once. Replacing them signs the user
 * out everywhere else: an old code may have been used, or be known to someone.
 */
import { invalidRequest } from '../errors.ts';
import { issueRecoveryCodes, poolUsesRecoveryCodes } from '../factors/recovery-code/issue-recovery-codes.ts';
import {
  type SelfServiceContext,
  type SelfServiceScope,
  type SignedOutView,
  signOutOthers,
  writerOf,
} from './self-service-scope.ts';

export function selfRecoveryCodes(context: SelfServiceContext) {
  const { durable, recoveryCodeKey } = context;
  return {
    /** @throws {PosternError} invalid_request where the pool does not use recovery codes. */
    async replaceRecoveryCodes(
      scope: SelfServiceScope,
    ): Promise<{ recovery_codes: string[]; signed_out: SignedOutView }> {
      const user = await writerOf(context, scope);
      if (!poolUsesRecoveryCodes(scope.pool.authentication))
        throw invalidRequest('This service does not use recovery codes.');
      const codes = await issueRecoveryCodes(durable.recoveryCodes, recoveryCodeKey, {
        poolId: scope.pool.id,
        userId: user.id,
      });
      scope.audit.record({
        event: 'recovery_codes_issued',
        outcome: 'success',
        detail: { count: codes.length, replaced: true },
      });
      return {
        recovery_codes: codes,
        signed_out: await signOutOthers(context, scope, 'recovery_codes_replaced'),
      };
    },
  };
}
