/**
 * The audit trail in PostgreSQL/PGlite: append-only security events (sign-in,
 * passkey added or removed, ...). `user_id` has no foreign key so events
 * outlive the users they describe.
 *
 * An event is stored whatever text it carries: a refusal's reason can quote
 * what an attacker sent (a passkey's client data is JSON inside base64, out of
 * the body reader's sight). PostgreSQL refuses two things JavaScript strings
 * can hold, a lone surrogate (in jsonb) and U+0000 (in text and jsonb), and a
 * failed insert would turn the refusal being audited into a 500 and lose the
 * row. Both become U+FFFD before the insert.
 */
import type { Knex } from 'knex';
import type { AuditEvent, AuditEventRepository, StoredAuditEvent } from '../types.ts';
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

function toRow(event: AuditEvent) {
  return {
    pool_id: event.poolId,
    event: clean(event.event),
    outcome: event.outcome,
    user_id: event.userId ?? null,
    credential_id: storable(event.credentialId),
    ip: event.ip ?? null,
    user_agent: storable(event.userAgent),
    detail: toJsonb(storableJson(event.detail)),
  };
}

/**
 * The AuditEventRepository over knex. Driver errors leave it as typed storage errors.
 * @throws {StoreUnavailableError} when the database is unreachable.
 */
export function createAuditEventRepository(db: Knex): AuditEventRepository {
  return withTranslatedErrors<AuditEventRepository>({
    async append(event) {
      await db('audit_events').insert(toRow(event));
    },

    async appendMany(events) {
      if (events.length > 0) await db('audit_events').insert(events.map(toRow));
    },

    async list(poolId, filter = {}) {
      if (filter.userId !== undefined && !isUuid(filter.userId)) return [];
      const query = db<AuditEventRow>('audit_events').where({ pool_id: poolId });
      if (filter.userId !== undefined) query.where({ user_id: filter.userId });
      if (filter.event !== undefined) query.where({ event: filter.event });
      const { before } = filter;
      if (before !== undefined) {
        // Ids start at 1 (nothing lies below 0, nor below NaN); past 2^53 every id does.
        // Whole numbers only: Postgres would refuse "1.5" as a bigint.
        if (!(before > 0)) return [];
        if (before <= Number.MAX_SAFE_INTEGER) query.where('id', '<', Math.ceil(before));
      }
      const limit = Math.min(Math.max(1, filter.limit ?? DEFAULT_LIMIT), MAX_LIMIT);
      // Newest first by id, the order rows were written: occurred_at is the writer's
      // transaction start, which concurrent writers interleave, and paging by id
      // (`before`) must neither repeat nor skip an event.
      const rows = await query.orderBy('id', 'desc').limit(limit);
      return rows.map(toStoredEvent);
    },
  });
}

/** A lone surrogate, which jsonb refuses (with the u flag, a surrogate pair does not match). */
const LONE_SURROGATE = /\p{Cs}/gu;

/** `text` with what PostgreSQL refuses (lone surrogates, and U+0000 in text and jsonb) replaced by U+FFFD. */
function clean(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd').replaceAll('\u0000', '\ufffd');
}

function storable(value: string | null | undefined): string | null {
  return value === undefined || value === null ? null : clean(value);
}

/** Nesting kept in a stored detail; deeper values are summarised. */
const MAX_DETAIL_DEPTH = 8;

/** A copy of a detail value whose every string and key is `storable`. */
function storableJson(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return clean(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DETAIL_DEPTH) return '[nested too deep]';
  if (Array.isArray(value)) return value.map((item) => storableJson(item, depth + 1));
  if (value instanceof Date) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [clean(key), storableJson(item, depth + 1)]),
  );
}
