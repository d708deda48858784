/**
 * Making the account of a sign-up that needs no credential of its own: the
 * user declined the optional passkey (email codes let them back in), or the
 * pool has nothing to enrol at all (email codes only, without passkeys). The
 * email was proven by the sign-up's code.
 */
import { UniqueViolationError } from '../storage/errors.ts';
import type { LoginContext } from './login-context.ts';
import { accountExists } from './login-errors.ts';
import type { Progress } from './progress.ts';

/** @throws {PosternError} account_exists when the email got an account meanwhile. */
export async function createSignUpAccount(
  ctx: LoginContext,
  signup: NonNullable<Progress['signup']>,
): Promise<string> {
  let userId: string;
  try {
    const user = await ctx.kit.deps.durable.users.create({
      poolId: ctx.pool.id,
      email: signup.email,
      emailVerified: true,
      // The handle this sign-up's passkey options already gave out, if any (progress.ts).
      webauthnUserId: signup.webauthnUserId,
    });
    userId = user.id;
  } catch (error) {
    if (error instanceof UniqueViolationError) throw accountExists();
    throw error;
  }
  ctx.audit('sign_up', 'success', { userId });
  return userId;
}
