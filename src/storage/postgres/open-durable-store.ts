/**
 * Opens the durable store: PostgreSQL when a URL is given, otherwise PGlite
 * (real Postgres compiled to WebAssembly) persisted under `dataDir`, or in
 * memory for tests. Both go through knex and the same repositories.
 *
 * PostgreSQL connections are made lazily; call `ping()` or `migrate()` at boot
 * to fail there rather than at the first request. Connection attempts and
 * pool waits give up after CONNECT_TIMEOUT_MS, so an unreachable database
 * answers StoreUnavailableError promptly instead of hanging a request.
 *
 * PGlite and its knex client are imported only when PGlite is opened: a
 * process run against PostgreSQL never loads them.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import knex, { type Knex } from 'knex';
import type { StoreLogger } from '../store-logger.ts';
import type { DurableStore } from '../types.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { createKnexDurableStore } from './knex-durable-store.ts';

/** How long to wait for a new connection, or for a free one from the pool. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * PGlite has a single connection that every query queues for; a burst of work
 * can legitimately wait longer than a network timeout, and there is no network.
 */
const PGLITE_ACQUIRE_TIMEOUT_MS = 60_000;

export interface OpenDurableStoreOptions {
  /** (Optional) A `postgres://` URL. Defaults to none: use PGlite. */
  url?: string;
  /** (Optional) Where PGlite keeps its files (its parent is created). Defaults to in-memory. Ignored with `url`. */
  dataDir?: string;
  /** (Optional) Most PostgreSQL connections this process opens. Defaults to 10. Ignored by PGlite. */
  poolMax?: number;
  /** (Optional) Receives knex's warnings. Defaults to silence for warnings, console for errors. */
  logger?: StoreLogger;
}

/**
 * knex's own log. "Acquire connection error" is dropped: the same failure
 * reaches the caller as StoreUnavailableError, and logging it again on every
 * request while the database is down only floods the log.
 */
function knexLog(logger: StoreLogger | undefined): Knex.Config['log'] {
  return {
    warn(message: unknown) {
      const text = String(message);
      if (!text.startsWith('Acquire connection error')) logger?.warn({ source: 'knex' }, text);
    },
    error(message: unknown) {
      if (logger) logger.warn({ source: 'knex' }, String(message));
      else console.error(message);
    },
    deprecate() {},
    debug() {},
  };
}

function postgresConfig(url: string, poolMax: number, logger: StoreLogger | undefined): Knex.Config {
  return {
    client: 'pg',
    log: knexLog(logger),
    connection: {
      connectionString: url,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'postern',
    },
    // min 0: idle connections are closed rather than kept against a restarted server.
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: CONNECT_TIMEOUT_MS,
  };
}

async function openPglite(
  dataDir: string | undefined,
  logger: StoreLogger | undefined,
): Promise<DurableStore> {
  const [{ PGlite }, { default: ClientPgLite }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('knex-pglite'),
  ]);
  let release = async () => {};
  if (dataDir !== undefined) {
    await mkdir(dirname(resolve(dataDir)), { recursive: true });
    release = await lockDataDir(resolve(dataDir));
  }
  // Created here, not by knex-pglite, so a broken data directory fails at open.
  const pglite = await PGlite.create(dataDir).catch(async (error: unknown) => {
    await release();
    throw error;
  });
  const db = knex({
    client: ClientPgLite,
    log: knexLog(logger),
    // knex-pglite takes an existing instance through a connection function.
    connection: (() => ({ pglite })) as unknown as Knex.Config['connection'],
    acquireConnectionTimeout: PGLITE_ACQUIRE_TIMEOUT_MS,
  });
  return createKnexDurableStore(db, {
    kind: 'pglite',
    onClose: async () => {
      if (!pglite.closed) await pglite.close();
      await release();
    },
  });
}

/**
 * Opens PostgreSQL (with `url`) or PGlite (without).
 * @throws {DataDirLockedError} when another process has PGlite's `dataDir` open.
 * @throws {Error} when PGlite cannot open `dataDir`. PostgreSQL is not contacted
 *   here; its failures surface as StoreUnavailableError from the first query.
 */
export async function openDurableStore(options: OpenDurableStoreOptions = {}): Promise<DurableStore> {
  const { url, dataDir, poolMax = 10, logger } = options;
  if (url === undefined) return openPglite(dataDir, logger);
  const db = knex(postgresConfig(url, poolMax, logger));
  return createKnexDurableStore(db, {
    kind: 'postgres',
    openLockConnection: () => knex(postgresConfig(url, 1, logger)),
  });
}
