/**
 * Each pool's token signing keys in PostgreSQL/PGlite, stored as the layer
 * above encrypted them (storage never sees a private key in clear).
 *
 * `add` runs under a per-pool transaction-scoped advisory lock: on first start
 * several processes may race to create the pool's keys, and with
 * `onlyIfNone` exactly one of them must win. There is no row to lock yet,
 * hence the advisory lock (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS).
 */
import type { Knex } from 'knex';
import type { SigningAlgorithm, SigningKeyRecord, SigningKeyRepository } from '../types.ts';
import { changedRows, toNumber } from './column-values.ts';
import { withTranslatedErrors } from './translate-error.ts';

interface SigningKeyRow {
  pool_id: string;
  kid: string;
  alg: SigningAlgorithm;
  encrypted_jwk: string;
  created_at: Date;
  retired_at: Date | null;
}

function toRecord(row: SigningKeyRow): SigningKeyRecord {
  return {
    poolId: row.pool_id,
    kid: row.kid,
    alg: row.alg,
    encryptedJwk: row.encrypted_jwk,
    createdAt: row.created_at,
    retiredAt: row.retired_at,
  };
}

/**
 * The SigningKeyRepository over knex. Driver errors leave it as typed storage errors.
 * @throws {UniqueViolationError} `signing_keys_pkey` when a kid already exists in the pool.
 * @throws {StoreUnavailableError} when the database is unreachable.
 */
export function createSigningKeyRepository(db: Knex): SigningKeyRepository {
  return withTranslatedErrors<SigningKeyRepository>({
    async list(poolId) {
      const rows = await db<SigningKeyRow>('signing_keys')
        .where({ pool_id: poolId })
        .orderBy([
          { column: 'created_at', order: 'desc' },
          { column: 'kid', order: 'asc' },
        ]);
      return rows.map(toRecord);
    },

    add(poolId, keys, options = {}) {
      return db.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`postern:signing_keys:${poolId}`]);
        if (options.onlyIfNone) {
          const existing = await trx('signing_keys').where({ pool_id: poolId }).count({ count: '*' }).first();
          if (toNumber(existing?.count ?? 0) > 0) return false;
        }
        if (keys.length === 0) return false;
        // A new key of an algorithm retires the ones it replaces, as of its own
        // creation or the later moment the caller names.
        for (const key of keys) {
          await trx('signing_keys')
            .where({ pool_id: poolId, alg: key.alg })
            .whereNull('retired_at')
            .update({ retired_at: options.retireReplacedAt ?? key.createdAt });
        }
        await trx('signing_keys').insert(
          keys.map((key) => ({
            pool_id: poolId,
            kid: key.kid,
            alg: key.alg,
            encrypted_jwk: key.encryptedJwk,
            created_at: key.createdAt,
            retired_at: key.retiredAt,
          })),
        );
        return true;
      });
    },

    async deleteRetiredBefore(poolId, before) {
      return changedRows(
        await db('signing_keys')
          .where({ pool_id: poolId })
          .whereNotNull('retired_at')
          .where('retired_at', '<', before)
          .delete(),
      );
    },
  });
}
