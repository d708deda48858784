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
import { PosternError } from '../../errors.ts';
import {
  type Argon2Parameters,
  decoyHash,
  hashPassword,
  needsRehash,
  verifyPassword,
} from '../../factors/password/password-hasher.ts';
import { UniqueViolationError } from '../../storage/errors.ts';
import { type Answer, accountExists, type InteractionScope, type LoginKit } from '../login-kit.ts';

/** Wrong passwords from one address for one account, before that pair pauses. */
const ATTEMPTS_PER_ACCOUNT_AND_ADDRESS = 5;

export function passwordCalls(kit: LoginKit) {
  const { durable } = kit.deps;

  const argon2 = (scope: InteractionScope): Argon2Parameters => {
    const { memory_kib, iterations, parallelism } = scope.pool.authentication.password.argon2;
    return { memoryKib: memory_kib, iterations, parallelism };
  };

  /** The account's limits that apply to this browser, each with the key it counts under. */
  const accountLimits = (scope: InteractionScope, email: string) => {
    const { max_failures, failure_window } = scope.pool.authentication.password;
    const perPair = { points: ATTEMPTS_PER_ACCOUNT_AND_ADDRESS, windowSeconds: failure_window };
    const device = kit.knownDeviceOf(scope, email);
    if (device)
      return [{ name: `password_account_device:${scope.pool.id}`, rule: perPair, key: `${email}|${device}` }];
    return [
      { name: `password_account_ip:${scope.pool.id}`, rule: perPair, key: `${email}|${scope.ip}` },
      {
        name: `password_account:${scope.pool.id}`,
        rule: { points: max_failures, windowSeconds: failure_window },
        key: email,
      },
    ];
  };

  async function signIn(scope: InteractionScope, email: string, password: string): Promise<string> {
    await kit.limit(scope, 'password_ip', scope.ip);
    const limits = accountLimits(scope, email);
    for (const { name, rule, key } of limits) await kit.limitWith(scope, name, rule, key);

    const user = await durable.users.findByEmail(scope.pool.id, email);
    const stored = user ? await durable.users.getPasswordHash(scope.pool.id, user.id) : undefined;
    const matches = await verifyPassword(stored ?? (await decoyHash(argon2(scope))), password);
    if (!user || !stored || !matches) {
      await kit.audit(scope, 'sign_in', 'failure', {
        userId: user?.id,
        detail: {
          method: 'password',
          reason: !user ? 'unknown email' : !stored ? 'account has no password' : 'wrong password',
        },
      });
      throw new PosternError(400, 'invalid_credentials', 'That email and password do not match.');
    }
    for (const { name, rule, key } of limits) await kit.resetLimit(name, rule, key);
    if (needsRehash(stored, argon2(scope))) {
      await durable.users.setPasswordHash(
        scope.pool.id,
        user.id,
        await hashPassword(password, argon2(scope)),
      );
    }
    return user.id;
  }

  function checkChoice(scope: InteractionScope, email: string, password: string) {
    const { min_length } = scope.pool.authentication.password;
    if ([...password].length < min_length) {
      throw new PosternError(400, 'weak_password', `Choose a password of at least ${min_length} characters.`);
    }
    if (password.trim().toLowerCase() === email) {
      throw new PosternError(400, 'weak_password', 'Your password cannot be your email address.');
    }
  }

  return {
    async password(scope: InteractionScope, { password }: { password: string }): Promise<Answer> {
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(
        scope,
        progress,
        (candidate) =>
          (candidate.step === 'first_factor' ||
            (candidate.step === 'enroll' && candidate.reason === 'signup')) &&
          candidate.methods.includes('password'),
        'A password',
      );

      if (step.step === 'enroll') {
        const email = progress.signup?.email;
        if (!email) throw kit.notNow('Choosing a password');
        checkChoice(scope, email, password);
        let userId: string;
        try {
          const user = await durable.users.create({
            poolId: scope.pool.id,
            email,
            emailVerified: true,
            // The handle this sign-up's passkey options already gave out, if any (progress.ts).
            webauthnUserId: progress.signup?.webauthnUserId,
            passwordHash: await hashPassword(password, argon2(scope)),
          });
          userId = user.id;
        } catch (error) {
          if (error instanceof UniqueViolationError) throw accountExists();
          throw error;
        }
        await kit.audit(scope, 'sign_up', 'success', { userId, detail: { method: 'password' } });
        return kit.advance(scope, { ...progress, userId, passwordEntered: true });
      }

      if (!progress.email) throw kit.notNow('A password');
      const userId = await signIn(scope, progress.email, password);
      const factor = { method: 'password' as const, amr: ['pwd'], multiFactor: false, at: kit.now() };
      return kit.advance(scope, { ...progress, userId, factors: [factor], passwordEntered: true });
    },
  };
}
