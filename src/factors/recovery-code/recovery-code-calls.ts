/**
 * Recovery codes: issued once a user has a second factor (shown once, stored
 * as keyed hashes), used as a second factor where the pool lists them. A
 * recovery sign-in says so (amr otp, acr 0), tells how many codes remain,
 * and is offered to replace the lost passkey.
 *
 * A recovery sign-in also signs the user out everywhere else, the moment the
 * code is accepted (src/factors/sign-out-others.ts): whoever has the lost
 * passkey must not stay signed in with it. This browser's own session, if it
 * already was the user's, is kept. The answer says what was signed out
 * (`signed_out: { sessions, apps }`).
 */
import { PosternError } from '../../errors.ts';
import type { LoginContext } from '../../interactions/login-context.ts';
import { notNow } from '../../interactions/login-errors.ts';
import type { Answer } from '../../interactions/present-step.ts';
import { issueFirstRecoveryCodes as issueFirstCodes } from '../recovery-code/issue-recovery-codes.ts';
import { hashRecoveryCode } from '../recovery-code/recovery-codes.ts';
import { refusal } from '../refusal-codes.ts';
import { signOutOthers, withSignedOut } from '../sign-out-others.ts';

/**
 * The first time a user gets a second factor they get ten codes
 * (factors/recovery-code). Returns them, to be shown once; undefined when the
 * user already holds codes or the pool uses none.
 */
export async function issueFirstRecoveryCodes(ctx: LoginContext, userId: string) {
  const codes = await issueFirstCodes(ctx.kit.deps.durable.recoveryCodes, ctx.kit.keys.recoveryCodes, {
    poolId: ctx.pool.id,
    userId,
    authentication: ctx.pool.authentication,
  });
  if (codes) {
    ctx.accountChanged(userId);
    ctx.audit('recovery_codes_issued', 'success', { userId, detail: { count: codes.length } });
  }
  return codes;
}

export const recoveryCodeCalls = {
  async recoveryCode(ctx: LoginContext, { code }: { code: string }): Promise<Answer> {
    await ctx.limit('recovery_code_ip', ctx.scope.ip);
    const step = await ctx.require(
      (candidate) => candidate.step === 'second_factor' && candidate.methods.includes('recovery_code'),
      'A recovery code',
    );
    const { progress, pool } = ctx;
    const userId = progress.userId;
    if (step.step !== 'second_factor' || !userId) throw notNow('A recovery code');
    await ctx.limit('recovery_code_user', `${pool.id}:${userId}`);

    const remaining = await ctx.kit.deps.durable.recoveryCodes.use(
      pool.id,
      userId,
      hashRecoveryCode(ctx.kit.keys.recoveryCodes, code),
    );
    if (remaining === undefined) {
      ctx.audit('sign_in', 'failure', {
        userId,
        detail: { method: 'recovery_code', ...refusal('unknown_or_used_code', 'unknown or used code') },
      });
      throw new PosternError(400, 'invalid_code', 'That recovery code is not valid or was already used.');
    }
    ctx.accountChanged(userId);
    ctx.audit('recovery_code_used', 'success', { userId, detail: { remaining } });
    ctx.log.info({ user: userId, remaining }, 'recovery sign-in');
    const signedOut = await signOutOthers(ctx, userId, 'recovery_sign_in');
    const factor = { method: 'recovery_code' as const, amr: ['otp'], multiFactor: false, at: ctx.now() };
    const answer = await ctx.advance(
      { ...progress, factors: [...progress.factors, factor], recovered: true },
      { recovery_codes_remaining: remaining },
    );
    return withSignedOut(answer, signedOut);
  },
};
