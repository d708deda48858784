/**
 * PostgreSQL against the durable conformance suite (on its own database,
 * dropped afterwards), plus what only a server has: several processes
 * migrating at once, and failing fast when it is unreachable.
 */

import test from 'ava';
import pg from 'pg';
import { migrations } from '../../migrations/index.ts';
import { StoreUnavailableError } from '../../src/storage/errors.ts';
import { openDurableStore } from '../../src/storage/postgres/open-durable-store.ts';
import {
  createTestDatabase,
  createTestDatabaseFor,
  probePostgres,
  serviceTest,
  type TestDatabase,
} from '../support/services.ts';
import { registerDurableConformance } from './durable-conformance.ts';

const postgres = await probePostgres();
const withPostgres = serviceTest(test, postgres);

let database: TestDatabase | undefined;
registerDurableConformance(withPostgres, 'postgres', async () => {
  database = await createTestDatabase();
  return openDurableStore({ url: database.url });
});
// Registered after the suite's own hook, so the store is closed before its database goes.
test.after.always('drop the test database', async () => {
  await database?.drop();
});

withPostgres(
  'postgres: two processes migrating a fresh database at once both succeed, applying it once',
  async (t) => {
    const { url } = await createTestDatabaseFor(t);
    const [a, b] = [await openDurableStore({ url }), await openDurableStore({ url })];
    t.teardown(async () => {
      await Promise.all([a.close(), b.close()]);
    });
    t.deepEqual(
      await a.pendingMigrations(),
      migrations.map((migration) => migration.name),
      'pendingMigrations works before any migration',
    );

    const results = await Promise.all([a.migrate(), b.migrate()]);
    t.deepEqual(results.map((result) => result.applied.length).sort(), [0, migrations.length]);
    t.deepEqual(await b.pendingMigrations(), []);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ count: string }>('select count(*) from knex_migrations');
      t.is(Number(rows[0]?.count), migrations.length, 'each migration recorded once');
    } finally {
      await client.end();
    }
  },
);

withPostgres('postgres: pendingMigrations does not create the bookkeeping tables', async (t) => {
  const { url } = await createTestDatabaseFor(t);
  const store = await openDurableStore({ url });
  t.teardown(() => store.close());
  await store.pendingMigrations();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(`select to_regclass('knex_migrations') as table`);
    t.is(rows[0]?.table, null);
  } finally {
    await client.end();
  }
});

test('postgres: an unreachable server makes ping and queries fail fast with StoreUnavailableError', async (t) => {
  const started = Date.now();
  const store = await openDurableStore({ url: 'postgres://postgres@127.0.0.1:1/postern' });
  t.teardown(() => store.close());
  t.is(store.kind, 'postgres');
  const ping = await t.throwsAsync(() => store.ping(), { instanceOf: StoreUnavailableError });
  t.is(ping?.service, 'database');
  await t.throwsAsync(() => store.users.findByEmail('pool', 'a@example.com'), {
    instanceOf: StoreUnavailableError,
  });
  await t.throwsAsync(() => store.oidcModels('pool').find('Grant', 'g'), {
    instanceOf: StoreUnavailableError,
  });
  await t.throwsAsync(() => store.migrate(), { instanceOf: StoreUnavailableError });
  t.true(Date.now() - started < 10_000, `answered in ${Date.now() - started} ms`);
});

test('postgres: an unresolvable host fails with StoreUnavailableError', async (t) => {
  const store = await openDurableStore({
    url: 'postgres://postgres@postern-no-such-host.invalid:5432/postern',
  });
  t.teardown(() => store.close());
  await t.throwsAsync(() => store.users.findByEmail('pool', 'a@example.com'), {
    instanceOf: StoreUnavailableError,
  });
});
