/**
 * oidc-provider's long-lived models (Grant, RefreshToken) for one pool, in
 * PostgreSQL/PGlite. Short-lived models live in the ephemeral store; both
 * implement OidcModelStore and pass the same conformance suite.
 *
 * - Expiry uses the database clock (`now()`) both when writing and reading, so
 *   app servers with skewed clocks agree. Expired rows are invisible at once
 *   and deleted later by `sweepExpired`.
 * - `consume` is one conditional UPDATE (`... AND consumed_at IS NULL`):
 *   under READ COMMITTED a concurrent second UPDATE re-checks the row after
 *   the first commits and changes nothing, so exactly one caller wins.
 * - Consumption is monotonic: re-upserting an artifact keeps its consumed mark
 *   (as oidc-provider's reference Redis adapter does, which only rewrites the
 *   payload field), unless the old row had already expired.
 * - A payload jsonb cannot keep (U+0000, an unpaired surrogate) is refused
 *   before the database sees it, as an UnstorablePayloadError that
 *   oidc-provider answers as 400 invalid_request.
 */
import type { Knex } from 'knex';
import type { OidcModelStore, OidcPayload } from '../types.ts';
import { changedRows } from './column-values.ts';
import { withTranslatedErrors } from './translate-error.ts';

/**
 * A payload PostgreSQL's jsonb cannot keep: a string or key holding U+0000 or
 * an unpaired surrogate, which jsonb refuses (SQLSTATE 22P05, 22P02). A
 * backstop: such text comes from the parameters of an authorization request,
 * which src/oidc/storable-params.ts refuses at the door. `statusCode`,
 * `expose`, `message` and `error_description` are what oidc-provider's error
 * handlers read (lib/helpers/err_out.js), so its endpoints answer 400
 * invalid_request with this description rather than a 500 (as
 * StoreUnavailableError's statusCode makes theirs a 503).
 */
export class UnstorablePayloadError extends Error {
  readonly statusCode = 400;
  readonly expose = true;
  readonly error_description = 'the request contains text that cannot be stored';
  /** The oidc-provider model that could not be stored. */
  readonly model: string;

  constructor(model: string) {
    super('invalid_request');
    this.name = 'UnstorablePayloadError';
    this.model = model;
  }
}

/** An unpaired surrogate: with the u flag, a paired one is one code point and does not match. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Whether jsonb keeps every string and key of `payload`. Iterative: a payload can nest deeply. */
function storable(payload: unknown): boolean {
  const pending: unknown[] = [payload];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\u0000') || LONE_SURROGATE.test(value)) return false;
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes('\u0000') || LONE_SURROGATE.test(key)) return false;
        pending.push(item);
      }
    }
  }
  return true;
}

interface OidcModelRow {
  payload: OidcPayload;
  consumed_at: Date | null;
}

function toPayload(row: OidcModelRow): OidcPayload;
function toPayload(row: OidcModelRow | undefined): OidcPayload | undefined;
function toPayload(row: OidcModelRow | undefined): OidcPayload | undefined {
  if (!row) return undefined;
  if (row.consumed_at === null) return row.payload;
  return { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) };
}

/**
 * The OidcModelStore of one pool over knex. Driver errors leave it as typed storage errors.
 * @throws {StoreUnavailableError} when the database is unreachable.
 * @throws {UnstorablePayloadError} from upsert, for a payload jsonb cannot keep.
 */
export function createOidcModelRepository(db: Knex, poolId: string): OidcModelStore {
  const rows = () => db('oidc_models');
  /** Narrows a query to rows whose expiry has not passed (by the database clock). */
  const live = (query: Knex.QueryBuilder) =>
    query.where((q) => q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()));

  const findBy = async (model: string, field: 'uid' | 'userCode', value: string) => {
    // Only Session (uid) and DeviceCode (userCode) are looked up this way, and
    // neither is stored durably in practice, so a jsonb scan of the pool is enough.
    const row = await live(
      rows()
        .select('payload', 'consumed_at')
        .where({ pool_id: poolId, model })
        .whereRaw('payload->>? = ?', [field, value]),
    ).first();
    return toPayload(row);
  };

  return withTranslatedErrors<OidcModelStore>({
    async upsert(model, id, payload, expiresInSeconds) {
      if (!storable(payload) || !storable(id)) throw new UnstorablePayloadError(model);
      const consumedAt = typeof payload.consumed === 'number' ? new Date(payload.consumed * 1000) : null;
      await rows()
        .insert({
          pool_id: poolId,
          model,
          id,
          grant_id: payload.grantId ?? null,
          account_id: payload.accountId ?? null,
          payload: JSON.stringify(payload),
          consumed_at: consumedAt,
          expires_at:
            expiresInSeconds === undefined
              ? null
              : db.raw(`now() + ?::double precision * interval '1 second'`, [expiresInSeconds]),
        })
        .onConflict(['pool_id', 'model', 'id'])
        .merge({
          grant_id: db.raw('excluded.grant_id'),
          account_id: db.raw('excluded.account_id'),
          payload: db.raw('excluded.payload'),
          expires_at: db.raw('excluded.expires_at'),
          consumed_at: db.raw(
            `case when oidc_models.expires_at <= now() then excluded.consumed_at
                  else coalesce(oidc_models.consumed_at, excluded.consumed_at) end`,
          ),
        });
    },

    async find(model, id) {
      const row = await live(
        rows().select('payload', 'consumed_at').where({ pool_id: poolId, model, id }),
      ).first();
      return toPayload(row);
    },

    findByUid(model, uid) {
      return findBy(model, 'uid', uid);
    },

    findByUserCode(model, userCode) {
      return findBy(model, 'userCode', userCode);
    },

    async consume(model, id) {
      const changed = await live(
        rows().where({ pool_id: poolId, model, id }).whereNull('consumed_at'),
      ).update({
        consumed_at: db.raw('now()'),
      });
      return changedRows(changed) === 1;
    },

    async destroy(model, id) {
      await rows().where({ pool_id: poolId, model, id }).delete();
    },

    async revokeByGrantId(model, grantId) {
      await rows().where({ pool_id: poolId, model, grant_id: grantId }).delete();
    },

    async listByAccountId(model, accountId) {
      // Indexed by (pool_id, account_id): migrations/0004_oidc_models_by_account.ts.
      const found: Array<OidcModelRow & { id: string }> = await live(
        rows()
          .select('id', 'payload', 'consumed_at')
          .where({ pool_id: poolId, model, account_id: accountId }),
      );
      return found.map((row) => ({ id: row.id, payload: toPayload(row) }));
    },
  });
}
