/**
 * What a pool accepts as a new password, and how it hashes passwords: one
 * rule for sign-up, the account page and the admin API.
 */
import type { PoolConfig } from '../config/types.ts';
import { PosternError } from '../errors.ts';
import type { Argon2Parameters } from '../factors/password/password-hasher.ts';
import { normaliseEmail } from './email.ts';

/** @throws {PosternError} 400 weak_password. */
export function assertAcceptablePassword(pool: PoolConfig, email: string, password: string): void {
  const { min_length } = pool.authentication.password;
  // Characters as the user counts them (code points), not UTF-16 units.
  if ([...password].length < min_length)
    throw new PosternError(400, 'weak_password', `Choose a password of at least ${min_length} characters.`);
  if (normaliseEmail(password) === normaliseEmail(email))
    throw new PosternError(400, 'weak_password', 'Your password cannot be your email address.');
}

export function argon2Of(pool: PoolConfig): Argon2Parameters {
  const { memory_kib, iterations, parallelism } = pool.authentication.password.argon2;
  return { memoryKib: memory_kib, iterations, parallelism };
}
