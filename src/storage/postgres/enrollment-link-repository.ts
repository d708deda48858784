/**
 * Enrolment links in PostgreSQL/PGlite (migrations/0006_enrollment_links.ts):
 * one per user, stored by the hash of its token, replaced by the next one.
 *
 * Redeeming is one transaction: the link row is locked, checked (unused,
 * unexpired), and the passkey stored (within the user's and the pool's
 * limits), the link marked used and the email marked verified together, so
 * a link creates exactly one passkey even when two browsers race with it.
 */
import type { Knex } from 'knex';
import type { EnrollmentLink, EnrollmentLinkRepository } from '../types.ts';
import { isUuid } from './column-values.ts';
import { insertPasskeyWithinLimits } from './passkey-repository.ts';
import { withTranslatedErrors } from './translate-error.ts';

interface EnrollmentLinkRow {
  token_hash: string;
  pool_id: string;
  user_id: string;
  created_by: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
}

function toLink(row: EnrollmentLinkRow): EnrollmentLink {
  return {
    tokenHash: row.token_hash,
    poolId: row.pool_id,
    userId: row.user_id,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
  };
}

/**
 * The EnrollmentLinkRepository over knex. Driver errors leave it as typed storage errors.
 * @throws {UniqueViolationError} from `redeem` when the credential is registered in the pool.
 * @throws {LimitExceededError} from `redeem` at the user's or the pool's passkey limit.
 * @throws {StoreUnavailableError} when the database is unreachable.
 */
export function createEnrollmentLinkRepository(db: Knex): EnrollmentLinkRepository {
  return withTranslatedErrors<EnrollmentLinkRepository>({
    async issue({ poolId, userId, tokenHash, expiresAt, createdBy }) {
      if (!isUuid(userId)) return false;
      const user = await db('users').select('id').where({ pool_id: poolId, id: userId }).first();
      if (!user) return false;
      // One statement: two links issued at once for one user end with exactly one, the later.
      await db('enrollment_links')
        .insert({
          token_hash: tokenHash,
          pool_id: poolId,
          user_id: userId,
          created_by: createdBy,
          expires_at: expiresAt,
        })
        .onConflict(['pool_id', 'user_id'])
        .merge({
          token_hash: tokenHash,
          created_by: createdBy,
          created_at: db.fn.now(),
          expires_at: expiresAt,
          used_at: null,
        });
      return true;
    },

    async find(poolId, tokenHash) {
      const row = await db<EnrollmentLinkRow>('enrollment_links')
        .where({ pool_id: poolId, token_hash: tokenHash })
        .first();
      return row ? toLink(row) : undefined;
    },

    async redeem(poolId, tokenHash, { now, passkey, maxPerUser, maxPerPool }) {
      return db.transaction(async (trx) => {
        const link = trx<EnrollmentLinkRow>('enrollment_links').where({
          pool_id: poolId,
          token_hash: tokenHash,
        });
        const owner = await link.clone().first('user_id');
        if (!owner) return { ok: false as const, reason: 'not_found' as const };
        // The user's row first, then the link's: the order deleting a user takes them
        // in (its cascade reaches the link), so the two cannot deadlock.
        await trx('users').select('id').where({ pool_id: poolId, id: owner.user_id }).forUpdate();
        const row = await link.clone().forUpdate().first();
        if (!row) return { ok: false as const, reason: 'not_found' as const };
        if (row.used_at) return { ok: false as const, reason: 'used' as const };
        if (row.expires_at.getTime() <= now.getTime())
          return { ok: false as const, reason: 'expired' as const };
        const stored = await insertPasskeyWithinLimits(
          trx,
          { ...passkey, poolId, userId: row.user_id },
          { maxPerUser, maxPerPool },
        );
        await trx('enrollment_links').where({ token_hash: tokenHash }).update({ used_at: now });
        await trx('users')
          .where({ pool_id: poolId, id: row.user_id })
          .update({ email_verified: true, updated_at: trx.fn.now() });
        return { ok: true as const, passkey: stored };
      });
    },
  });
}
