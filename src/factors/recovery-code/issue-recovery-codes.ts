/**
 * When a user gets recovery codes, shared by the login flow and self-service:
 * a pool uses them only when it lists them as a second factor and asks for a
 * second factor at all (with `never`, no sign-in would ever accept one). The
 * first second factor a user enrols brings ten; a user may replace the set at
 * any time, which voids the old one in the same transaction.
 */
import type { PoolConfig } from '../../config/types.ts';
import type { RecoveryCodeRepository } from '../../storage/types.ts';
import { generateRecoveryCodes } from './recovery-codes.ts';

type Authentication = Pick<PoolConfig['authentication'], 'second_factor' | 'second_factor_required'>;

/** Whether sign-ins in this pool can ever accept a recovery code. */
export function poolUsesRecoveryCodes(authentication: Authentication): boolean {
  return (
    authentication.second_factor_required !== 'never' &&
    authentication.second_factor.includes('recovery_code')
  );
}

/**
 * Makes ten new codes, stores their keyed hashes in place of the user's old
 * ones (in one transaction: the old set stops working), and returns the
 * codes, to be shown once.
 */
export async function issueRecoveryCodes(
  recoveryCodes: Pick<RecoveryCodeRepository, 'replace'>,
  key: Uint8Array,
  { poolId, userId }: { poolId: string; userId: string },
): Promise<string[]> {
  const { codes, hashes } = generateRecoveryCodes(key);
  await recoveryCodes.replace(poolId, userId, hashes);
  return codes;
}

/**
 * The codes a user's first second factor brings: ten new ones, or undefined
 * when the pool does not use recovery codes or the user still holds unused ones.
 */
export async function issueFirstRecoveryCodes(
  recoveryCodes: Pick<RecoveryCodeRepository, 'replace' | 'countUnused'>,
  key: Uint8Array,
  { poolId, userId, authentication }: { poolId: string; userId: string; authentication: Authentication },
): Promise<string[] | undefined> {
  if (!poolUsesRecoveryCodes(authentication)) return undefined;
  if ((await recoveryCodes.countUnused(poolId, userId)) > 0) return undefined;
  return issueRecoveryCodes(recoveryCodes, key, { poolId, userId });
}
