/**
 * A refresh token's rotation as one statement: a data-modifying CTE marks the
 * spent token consumed (only if it is live and unconsumed) and inserts its
 * successor only if that update changed a row. One statement is atomic, so a
 * database failure leaves the old token working rather than spent without a
 * successor, and two concurrent rotations of one token store one successor
 * (the loser's conditional update re-checks the row after the winner commits
 * and changes nothing). One round trip where consume-then-insert took two.
 */
import type { Knex } from 'knex';
import type { DurableStore, RefreshRotation } from '../types.ts';
import { changedRows } from './column-values.ts';

const MODEL = 'RefreshToken';

export function createRefreshRotation(db: Knex): DurableStore['rotateRefreshToken'] {
  return async (poolId, { spentId, successorId, successor, expiresInSeconds }: RefreshRotation) => {
    const result = await db.raw(
      `with spent as (
         update oidc_models set consumed_at = now()
          where pool_id = ? and model = ? and id = ? and consumed_at is null
            and (expires_at is null or expires_at > now())
         returning 1
       )
       insert into oidc_models (pool_id, model, id, grant_id, account_id, payload, consumed_at, expires_at)
       select ?, ?, ?, ?, ?, ?::jsonb, null,
              case when ?::double precision is null then null
                   else now() + ?::double precision * interval '1 second' end
        where exists (select 1 from spent)`,
      [
        poolId,
        MODEL,
        spentId,
        poolId,
        MODEL,
        successorId,
        successor.grantId ?? null,
        successor.accountId ?? null,
        JSON.stringify(successor),
        expiresInSeconds ?? null,
        expiresInSeconds ?? null,
      ],
    );
    return changedRows(result) === 1;
  };
}
