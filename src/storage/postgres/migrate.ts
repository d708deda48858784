/**
 * Schema migrations for PostgreSQL and PGlite, from the static list in
 * migrations/index.ts (the knex CLI cannot load `.ts`).
 *
 * Several app processes may start at once and all run `migrate`. knex's own
 * lock table makes the losers fail ("Migration table is already locked")
 * rather than wait, so on PostgreSQL the whole run happens under a session
 * advisory lock held by a dedicated connection: the others wait, then find
 * nothing pending. PGlite is one process with one connection and needs no lock.
 */
import type { Knex } from 'knex';
import { type Migration, migrations } from '../../../migrations/index.ts';
import type { MigrationResult } from '../types.ts';

/** knex's migration bookkeeping table (its default name). */
const MIGRATIONS_TABLE = 'knex_migrations';

/** The key of the advisory lock serialising migrations across processes. */
const LOCK_KEY = 'postern:migrate';

export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations,
  getMigrationName: (migration) => migration.name,
  getMigration: async (migration) => migration,
};

export interface MigrateOptions {
  /**
   * (Optional) Opens a knex of two connections on the same database, without
   * the serving pool's query timeouts: one holds the advisory lock while the
   * other migrates; destroyed afterwards. Omit for PGlite, which migrates `db`.
   */
  openMigrationDb?: () => Knex;
}

/**
 * Applies pending migrations.
 * @throws driver errors untranslated; the store wraps them.
 */
export async function migrate(db: Knex, options: MigrateOptions = {}): Promise<MigrationResult> {
  const latest = async (on: Knex): Promise<MigrationResult> => {
    const [, applied] = (await on.migrate.latest({ migrationSource })) as [number, string[]];
    return { applied };
  };
  if (!options.openMigrationDb) return latest(db);

  const migrationDb = options.openMigrationDb();
  try {
    // A transaction pins one connection; the xact lock is released when it ends,
    // even if this process dies mid-migration.
    return await migrationDb.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [LOCK_KEY]);
      return latest(migrationDb);
    });
  } finally {
    await migrationDb.destroy();
  }
}

/**
 * Names of the migrations not yet applied. Read-only: unlike knex's
 * `migrate.list`, it does not create the bookkeeping tables, so it cannot race
 * a concurrent `migrate`.
 * @throws driver errors untranslated; the store wraps them.
 */
export async function pendingMigrations(db: Knex): Promise<string[]> {
  const names = migrations.map((migration) => migration.name);
  if (!(await db.schema.hasTable(MIGRATIONS_TABLE))) return names;
  const applied = new Set(await db(MIGRATIONS_TABLE).pluck('name'));
  return names.filter((name) => !applied.has(name));
}
