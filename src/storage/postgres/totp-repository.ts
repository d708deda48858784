/**
 * TOTP second factors in PostgreSQL/PGlite (migrations/0007_totp_credentials.ts):
 * one per user, the secret sealed by the layer above.
 *
 * - Enrolling is one INSERT ... SELECT from the user's row with ON CONFLICT
 *   DO UPDATE: it lands only for a user of the pool, and two enrolments at
 *   once end with exactly one row, the later.
 * - Accepting a code is one compare-and-set UPDATE on `last_used_step`, so a
 *   code (and every code of an earlier step) works once: of concurrent uses
 *   of one code exactly one is recorded (RFC 6238 §5.2).
 */
import type { Knex } from 'knex';
import type { TotpCredential, TotpRepository } from '../types.ts';
import { changedRows, isUuid, toNumber } from './column-values.ts';
import { withTranslatedErrors } from './translate-error.ts';

interface TotpRow {
  pool_id: string;
  user_id: string;
  sealed_secret: string;
  created_at: Date;
  /** bigint: a string from pg, a number from PGlite. */
  last_used_step: string | number | null;
}

function toTotp(row: TotpRow): TotpCredential {
  return {
    poolId: row.pool_id,
    userId: row.user_id,
    sealedSecret: row.sealed_secret,
    createdAt: row.created_at,
    lastUsedStep: row.last_used_step === null ? null : toNumber(row.last_used_step),
  };
}

/** A time step is a whole number of periods since the epoch; anything else is a caller's bug. */
function assertStep(step: number | null): void {
  if (step !== null && !(Number.isSafeInteger(step) && step >= 0)) {
    throw new Error(`a TOTP time step is a non-negative integer, got ${step}`);
  }
}

/** SQLSTATE foreign_key_violation: the user was deleted between the SELECT and the INSERT's check. */
const FOREIGN_KEY_VIOLATION = '23503';

/**
 * The TotpRepository over knex. Driver errors leave it as typed storage errors.
 * @throws {StoreUnavailableError} when the database is unreachable.
 */
export function createTotpRepository(db: Knex): TotpRepository {
  return withTranslatedErrors<TotpRepository>({
    async find(poolId, userId) {
      if (!isUuid(userId)) return undefined;
      const row = await db<TotpRow>('totp_credentials').where({ pool_id: poolId, user_id: userId }).first();
      return row ? toTotp(row) : undefined;
    },

    async set(poolId, userId, sealedSecret, lastUsedStep) {
      assertStep(lastUsedStep);
      if (!isUuid(userId)) return false;
      // Selecting from users scopes the row to a user of the pool in the same statement.
      const fromUser = db('users')
        .select('pool_id', 'id', db.raw('?::text', [sealedSecret]), db.raw('?::bigint', [lastUsedStep]))
        .where({ pool_id: poolId, id: userId });
      try {
        const rows = await db
          .into(
            db.raw('?? (??, ??, ??, ??)', [
              'totp_credentials',
              'pool_id',
              'user_id',
              'sealed_secret',
              'last_used_step',
            ]),
          )
          .insert(fromUser)
          .onConflict(['pool_id', 'user_id'])
          .merge({
            sealed_secret: db.raw('excluded.sealed_secret'),
            last_used_step: db.raw('excluded.last_used_step'),
            created_at: db.fn.now(),
          })
          .returning('user_id');
        return rows.length === 1;
      } catch (error) {
        if ((error as { code?: unknown }).code === FOREIGN_KEY_VIOLATION) return false;
        throw error;
      }
    },

    async recordUse(poolId, userId, step) {
      assertStep(step);
      if (!isUuid(userId)) return false;
      const result = await db('totp_credentials')
        .where({ pool_id: poolId, user_id: userId })
        .where((guard) => guard.whereNull('last_used_step').orWhere('last_used_step', '<', step))
        .update({ last_used_step: step });
      return changedRows(result) === 1;
    },

    async delete(poolId, userId) {
      if (!isUuid(userId)) return false;
      const result = await db('totp_credentials').where({ pool_id: poolId, user_id: userId }).delete();
      return changedRows(result) === 1;
    },
  });
}
