/**
 * Passwords, where the pool lists them as a first factor: choosing one at
 * sign-up (after the email is proven) and signing in with one.
 *
 * Guessing is limited (a 429 with Retry-After) per client address, and then
 * for the account: from a browser that signed in to it before (a known
 * device, ../known-devices.ts), per that device; from anywhere else, per
 * account and address and per account from anywhere. So an attacker who
 * trips the account-wide limit pauses only password sign-ins from unknown
 * browsers, for at most the pool's failure_window: the owner's own browsers
 * keep their own allowance, and passkeys and email codes still sign them in.
 * A wrong password, an account without one and an unknown email all cost
 * one argon2id verification and answer the same.
 */
import { argon2Of, assertAcceptablePassword } from '../../accounts/password-rules.ts';
import { PosternError } from '../../errors.ts';
import type { LoginContext } from '../../interactions/login-context.ts';
import { accountExists, notNow } from '../../interactions/login-errors.ts';
import type { Answer } from '../../interactions/present-step.ts';
import { UniqueViolationError } from '../../storage/errors.ts';
import { decoyHash, hashPassword, needsRehash, verifyPassword } from '../password/password-hasher.ts';
import { refusal } from '../refusal-codes.ts';

/** Wrong passwords from one address for one account, before that pair pauses. */
const ATTEMPTS_PER_ACCOUNT_AND_ADDRESS = 5;

/** The account's limits that apply to this browser, each with the key it counts under. */
function accountLimits(ctx: LoginContext, email: string) {
  const { max_failures, failure_window } = ctx.pool.authentication.password;
  const perPair = { points: ATTEMPTS_PER_ACCOUNT_AND_ADDRESS, windowSeconds: failure_window };
  const device = ctx.knownDeviceOf(email);
  if (device)
    return [{ name: `password_account_device:${ctx.pool.id}`, rule: perPair, key: `${email}|${device}` }];
  return [
    { name: `password_account_ip:${ctx.pool.id}`, rule: perPair, key: `${email}|${ctx.scope.ip}` },
    {
      name: `password_account:${ctx.pool.id}`,
      rule: { points: max_failures, windowSeconds: failure_window },
      key: email,
    },
  ];
}

async function signIn(ctx: LoginContext, email: string, password: string): Promise<string> {
  await ctx.limit('password_ip', ctx.scope.ip);
  const limits = accountLimits(ctx, email);
  for (const { name, rule, key } of limits) await ctx.limitWith(name, rule, key);

  const { users } = ctx.kit.deps.durable;
  const argon2 = argon2Of(ctx.pool);
  const user = await users.findByEmail(ctx.pool.id, email);
  const stored = user ? await users.getPasswordHash(ctx.pool.id, user.id) : undefined;
  const matches = await verifyPassword(stored ?? (await decoyHash(argon2)), password);
  if (!user || !stored || !matches) {
    ctx.audit('sign_in', 'failure', {
      userId: user?.id,
      detail: {
        method: 'password',
        ...(!user
          ? refusal('unknown_email', 'unknown email')
          : !stored
            ? refusal('no_password', 'account has no password')
            : refusal('wrong_password', 'wrong password')),
      },
    });
    throw new PosternError(400, 'invalid_credentials', 'That email and password do not match.');
  }
  for (const { name, rule, key } of limits) await ctx.resetLimit(name, rule, key);
  if (needsRehash(stored, argon2))
    await users.setPasswordHash(ctx.pool.id, user.id, await hashPassword(password, argon2));
  return user.id;
}

export const passwordCalls = {
  async password(ctx: LoginContext, { password }: { password: string }): Promise<Answer> {
    const step = await ctx.require(
      (candidate) =>
        (candidate.step === 'first_factor' ||
          (candidate.step === 'enroll' && candidate.reason === 'signup')) &&
        candidate.methods.includes('password'),
      'A password',
    );
    const { progress, pool } = ctx;

    if (step.step === 'enroll') {
      const email = progress.signup?.email;
      if (!email) throw notNow('Choosing a password');
      assertAcceptablePassword(pool, email, password);
      let userId: string;
      try {
        const user = await ctx.kit.deps.durable.users.create({
          poolId: pool.id,
          email,
          emailVerified: true,
          // The handle this sign-up's passkey options already gave out, if any (progress.ts).
          webauthnUserId: progress.signup?.webauthnUserId,
          passwordHash: await hashPassword(password, argon2Of(pool)),
        });
        userId = user.id;
      } catch (error) {
        if (error instanceof UniqueViolationError) throw accountExists();
        throw error;
      }
      ctx.audit('sign_up', 'success', { userId, detail: { method: 'password' } });
      return ctx.advance({ ...progress, userId, passwordEntered: true });
    }

    if (!progress.email) throw notNow('A password');
    const userId = await signIn(ctx, progress.email, password);
    const factor = { method: 'password' as const, amr: ['pwd'], multiFactor: false, at: ctx.now() };
    return ctx.advance({ ...progress, userId, factors: [factor], passwordEntered: true });
  },
};
