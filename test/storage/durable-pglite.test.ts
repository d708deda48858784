/**
 * PGlite (the embedded default) against the durable conformance suite, on one
 * in-memory instance for the whole file (each start costs seconds), plus a
 * smoke test that a data directory persists across reopen.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { migrations } from '../../migrations/index.ts';
import { openDurableStore } from '../../src/storage/postgres/open-durable-store.ts';
import { registerDurableConformance } from './durable-conformance.ts';

registerDurableConformance(test, 'pglite', () => openDurableStore({}));

const names = migrations.map((migration) => migration.name);

test('pglite: a data directory (parent created on demand) is migrated once and keeps data across reopen', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'postern-pglite-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dataDir = join(root, 'nested', 'pglite');

  const first = await openDurableStore({ dataDir });
  t.is(first.kind, 'pglite');
  try {
    t.deepEqual(await first.pendingMigrations(), names);
    const results = await Promise.all([first.migrate(), first.migrate()]);
    t.deepEqual(results, [{ applied: names }, { applied: [] }], 'concurrent calls queue up');
    await first.users.create({ poolId: 'demo', email: 'kept@example.com' });
  } finally {
    await first.close();
  }

  const reopened = await openDurableStore({ dataDir });
  try {
    t.deepEqual(await reopened.pendingMigrations(), []);
    t.truthy(await reopened.users.findByEmail('demo', 'kept@example.com'));
  } finally {
    await reopened.close();
  }
});
