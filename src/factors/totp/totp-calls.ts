/**
 * TOTP at the second step of a sign-in: the code from the user's
 * authenticator app, matched within one time step either side of now, and
 * accepted once (the step it matched is recorded with a compare-and-set, so
 * a code seen over someone's shoulder, or replayed, fails). Every try counts
 * against the account (10 a quarter hour, until a right code resets it) and
 * against the address.
 */
import { errorOf } from '../../errors.ts';
import type { LoginContext } from '../../interactions/login-context.ts';
import { notNow } from '../../interactions/login-errors.ts';
import type { Answer } from '../../interactions/present-step.ts';
import type { CompletedFactor } from '../../interactions/progress.ts';
import { RATE_LIMITS } from '../../interactions/rate-limits.ts';
import { refusal } from '../refusal-codes.ts';
import { matchTotp } from './totp-codes.ts';
import { openTotpSecret } from './totp-secrets.ts';

/** The factor a TOTP code completes (RFC 8176: otp). */
export function totpFactor(at: number): CompletedFactor {
  return { method: 'totp', amr: ['otp'], multiFactor: false, at };
}

const WRONG = 'That code is not valid. Enter the code your authenticator app shows now.';

export const totpCalls = {
  async verifyTotp(ctx: LoginContext, { code }: { code: string }): Promise<Answer> {
    await ctx.limit('totp_ip', ctx.scope.ip);
    const step = await ctx.require(
      (candidate) => candidate.step === 'second_factor' && candidate.methods.includes('totp'),
      'An authenticator app code',
    );
    const { progress, pool } = ctx;
    const userId = progress.userId;
    if (step.step !== 'second_factor' || !userId) throw notNow('An authenticator app code');
    // Counted before the check, atomically (concurrent guesses cannot all pass a peek); a right code resets it.
    const accountKey = `${pool.id}:${userId}`;
    await ctx.limit('totp_user', accountKey);

    const { durable } = ctx.kit.deps;
    const credential = await durable.totp.find(pool.id, userId);
    if (!credential) throw notNow('An authenticator app code');
    const secret = openTotpSecret(ctx.kit.keys.totp, pool.id, userId, credential.sealedSecret);
    const matched = matchTotp(secret, code, ctx.kit.clock());
    const refuse = (code: 'wrong_code' | 'totp_replayed', description: string): never => {
      ctx.audit('sign_in', 'failure', { userId, detail: { method: 'totp', ...refusal(code) } });
      throw errorOf('invalid_code', { description, detail: code });
    };
    if (matched === undefined) return refuse('wrong_code', WRONG);
    if (!(await durable.totp.recordUse(pool.id, userId, matched)))
      return refuse('totp_replayed', 'That code was already used. Wait for the next one.');
    await ctx.resetLimit('totp_user', RATE_LIMITS.totp_user, accountKey);
    return ctx.advance({ ...progress, factors: [...progress.factors, totpFactor(ctx.now())] });
  },
};
