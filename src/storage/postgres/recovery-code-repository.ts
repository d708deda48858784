/**
 * Recovery codes in PostgreSQL/PGlite: only keyed hashes are stored (the
 * layer above hashes), a set is replaced in one transaction, and a code is
 * used by one guarded UPDATE, so of two concurrent uses exactly one wins.
 */
import type { Knex } from 'knex';
import type { RecoveryCodeRepository } from '../types.ts';
import { changedRows, isUuid, toNumber } from './column-values.ts';
import { withTranslatedErrors } from './translate-error.ts';

export function createRecoveryCodeRepository(db: Knex): RecoveryCodeRepository {
  const countUnused = async (trx: Knex | Knex.Transaction, poolId: string, userId: string) => {
    const row = await trx('recovery_codes')
      .where({ pool_id: poolId, user_id: userId })
      .whereNull('used_at')
      .count<{ count: string | number }[]>({ count: '*' })
      .first();
    return toNumber(row?.count ?? 0);
  };

  return withTranslatedErrors<RecoveryCodeRepository>({
    async replace(poolId, userId, hashes) {
      await db.transaction(async (trx) => {
        await trx('recovery_codes').where({ pool_id: poolId, user_id: userId }).delete();
        if (hashes.length > 0) {
          await trx('recovery_codes').insert(
            hashes.map((hash) => ({ pool_id: poolId, user_id: userId, code_hash: hash })),
          );
        }
      });
    },

    async use(poolId, userId, hash) {
      if (!isUuid(userId)) return undefined;
      return db.transaction(async (trx) => {
        const result = await trx('recovery_codes')
          .where({ pool_id: poolId, user_id: userId, code_hash: hash })
          .whereNull('used_at')
          .update({ used_at: trx.fn.now() });
        if (changedRows(result) !== 1) return undefined;
        return countUnused(trx, poolId, userId);
      });
    },

    async countUnused(poolId, userId) {
      return isUuid(userId) ? countUnused(db, poolId, userId) : 0;
    },
  });
}
