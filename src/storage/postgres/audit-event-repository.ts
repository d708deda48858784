/**
 * The audit trail in PostgreSQL/PGlite: append-only security events (sign-in,
 * passkey added or removed, ...). `user_id` has no foreign key so events
 * outlive the users they describe.
 */
import type { Knex } from 'knex';
import type { AuditEventRepository, StoredAuditEvent } from '../types.ts';
import { isUuid, toJsonb, toNumber } from './column-values.ts';
import { withTranslatedErrors } from './translate-error.ts';

interface AuditEventRow {
  id: string | number;
  pool_id: string;
  occurred_at: Date;
  user_id: string | null;
  event: string;
  outcome: 'success' | 'failure';
  credential_id: string | null;
  ip: string | null;
  user_agent: string | null;
  detail: Record<string, unknown> | null;
}

/** Default and ceiling of `list`'s `limit`. */
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

function toStoredEvent(row: AuditEventRow): StoredAuditEvent {
  return {
    id: toNumber(row.id),
    poolId: row.pool_id,
    occurredAt: row.occurred_at,
    userId: row.user_id,
    event: row.event,
    outcome: row.outcome,
    credentialId: row.credential_id,
    ip: row.ip,
    userAgent: row.user_agent,
    detail: row.detail,
  };
}

/**
 * The AuditEventRepository over knex. Driver errors leave it as typed storage errors.
 * @throws {StoreUnavailableError} when the database is unreachable.
 */
export function createAuditEventRepository(db: Knex): AuditEventRepository {
  return withTranslatedErrors<AuditEventRepository>({
    async append(event) {
      await db('audit_events').insert({
        pool_id: event.poolId,
        event: event.event,
        outcome: event.outcome,
        user_id: event.userId ?? null,
        credential_id: event.credentialId ?? null,
        ip: event.ip ?? null,
        user_agent: event.userAgent ?? null,
        detail: toJsonb(event.detail),
      });
    },

    async list(poolId, filter = {}) {
      if (filter.userId !== undefined && !isUuid(filter.userId)) return [];
      const query = db<AuditEventRow>('audit_events').where({ pool_id: poolId });
      if (filter.userId !== undefined) query.where({ user_id: filter.userId });
      if (filter.event !== undefined) query.where({ event: filter.event });
      const limit = Math.min(Math.max(1, filter.limit ?? DEFAULT_LIMIT), MAX_LIMIT);
      const rows = await query
        .orderBy([
          { column: 'occurred_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(limit);
      return rows.map(toStoredEvent);
    },
  });
}
