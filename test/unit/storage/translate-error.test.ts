/**
 * Driver errors that mean "the database cannot answer now" become
 * StoreUnavailableError (answered 503), also as knex reports them, with the
 * failed query's SQL before pg's message: a database killed or stalled
 * mid-request must never answer 500 (issue 12, item 1).
 */
import test from 'ava';
import { StoreUnavailableError, UniqueViolationError } from '../../../src/storage/errors.ts';
import { translateError } from '../../../src/storage/postgres/translate-error.ts';

const sql = 'select "payload" from "oidc_models" where "id" = $1 limit $2';

for (const [what, error] of [
  ['the server killed mid-query', new Error(`${sql} - Connection terminated unexpectedly`)],
  ['no answer within the query timeout', new Error(`${sql} - Query read timeout`)],
  [
    'the rollback of a transaction whose timed-out connection was closed',
    new Error('ROLLBACK - Client was closed and is not queryable'),
  ],
  ['no connection within the connect timeout', new Error('timeout expired')],
  [
    'statement_timeout',
    Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
  ],
  [
    'idle in transaction too long',
    Object.assign(new Error('terminating connection due to idle-in-transaction timeout'), { code: '25P03' }),
  ],
  [
    'a refused connection',
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
  ],
] as const) {
  test(`${what} is the database being unavailable`, (t) => {
    t.true(translateError(error) instanceof StoreUnavailableError);
  });
}

test('a unique violation is typed, and any other error stays as it is', (t) => {
  const unique = Object.assign(new Error('duplicate key'), { code: '23505', constraint: 'users_email' });
  t.true(translateError(unique) instanceof UniqueViolationError);
  const bug = new Error(`${sql} - column "nope" does not exist`);
  t.is(translateError(bug), bug);
});
