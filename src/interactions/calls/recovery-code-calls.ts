/**
 * Recovery codes: issued once a user has a second factor (shown once, stored
 * as keyed hashes), used as a second factor where the pool lists them. A
 * recovery sign-in says so (amr otp, acr 0), tells how many codes remain,
 * and is offered to replace the lost passkey.
 */
import { PosternError } from '../../errors.ts';
import { issueFirstRecoveryCodes as issueFirstCodes } from '../../factors/recovery-code/issue-recovery-codes.ts';
import { hashRecoveryCode } from '../../factors/recovery-code/recovery-codes.ts';
import type { Answer, InteractionScope, LoginKit } from '../login-kit.ts';

/**
 * The first time a user gets a second factor they get ten codes
 * (factors/recovery-code). Returns them, to be shown once; undefined when the
 * user already holds codes or the pool uses none.
 */
export async function issueFirstRecoveryCodes(kit: LoginKit, scope: InteractionScope, userId: string) {
  const codes = await issueFirstCodes(kit.deps.durable.recoveryCodes, kit.keys.recoveryCodes, {
    poolId: scope.pool.id,
    userId,
    authentication: scope.pool.authentication,
  });
  if (codes)
    await kit.audit(scope, 'recovery_codes_issued', 'success', { userId, detail: { count: codes.length } });
  return codes;
}

export function recoveryCodeCalls(kit: LoginKit) {
  const { durable } = kit.deps;

  return {
    async recoveryCode(scope: InteractionScope, { code }: { code: string }): Promise<Answer> {
      await kit.limit(scope, 'recovery_code_ip', scope.ip);
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(
        scope,
        progress,
        (candidate) => candidate.step === 'second_factor' && candidate.methods.includes('recovery_code'),
        'A recovery code',
      );
      const userId = progress.userId;
      if (step.step !== 'second_factor' || !userId) throw kit.notNow('A recovery code');
      await kit.limit(scope, 'recovery_code_user', `${scope.pool.id}:${userId}`);

      const remaining = await durable.recoveryCodes.use(
        scope.pool.id,
        userId,
        hashRecoveryCode(kit.keys.recoveryCodes, code),
      );
      if (remaining === undefined) {
        await kit.audit(scope, 'sign_in', 'failure', {
          userId,
          detail: { method: 'recovery_code', reason: 'unknown or used code' },
        });
        throw new PosternError(400, 'invalid_code', 'That recovery code is not valid or was already used.');
      }
      await kit.audit(scope, 'recovery_code_used', 'success', { userId, detail: { remaining } });
      scope.log.info({ user: userId, remaining }, 'recovery sign-in');
      const factor = { method: 'recovery_code' as const, amr: ['otp'], multiFactor: false, at: kit.now() };
      return kit.advance(
        scope,
        { ...progress, factors: [...progress.factors, factor], recovered: true },
        { recovery_codes_remaining: remaining },
      );
    },
  };
}
