/**
 * Opens the durable store: PostgreSQL when a URL is given, otherwise PGlite
 * (real Postgres compiled to WebAssembly) persisted under `dataDir`, or in
 * memory for tests. Both go through knex and the same repositories.
 *
 * PostgreSQL connections are made lazily; call `ping()` or `migrate()` at boot
 * to fail there rather than at the first request. Connection attempts, pool
 * waits and queries give up after `timeoutMs`, so an unreachable or
 * stalled database answers StoreUnavailableError promptly instead of hanging
 * a request. Migrations run on connections of their own, without them.
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

/**
 * How long a request's database work may wait by default: for a new
 * connection, for a free one from the pool, for one query's answer.
 * Loopback and LAN queries take milliseconds; past this the database is down
 * or stalled, and the request answers 503 within a second instead of hanging
 * (issue 12). The server gives up on the statement at the same time
 * (statement_timeout).
 */
const SERVE_TIMEOUT_MS = 800;

/** A transaction whose client went silent this long is ended by the server, so no lock outlives it. */
const IDLE_IN_TRANSACTION_MS = 5_000;

/**
 * Migrations are an operator's step that may legitimately run for minutes
 * (an index on a large table): no query timeout, only a connect timeout.
 */
const MIGRATION_CONNECT_TIMEOUT_MS = 5_000;

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
  /** (Optional) How long a request waits for PostgreSQL, in milliseconds. Defaults to SERVE_TIMEOUT_MS. Ignored by PGlite. */
  timeoutMs?: number;
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

/** `serveTimeoutMs` for a serving pool; undefined for migrations' connections. */
function postgresConfig(
  url: string,
  poolMax: number,
  logger: StoreLogger | undefined,
  serveTimeoutMs: number | undefined,
): Knex.Config {
  const serving = serveTimeoutMs !== undefined;
  const connectMs = serveTimeoutMs ?? MIGRATION_CONNECT_TIMEOUT_MS;
  return {
    client: 'pg',
    log: knexLog(logger),
    connection: {
      connectionString: url,
      connectionTimeoutMillis: connectMs,
      application_name: 'postern',
      ...(serving
        ? {
            query_timeout: serveTimeoutMs,
            statement_timeout: serveTimeoutMs,
            idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
          }
        : {}),
    },
    // min 0: idle connections are closed rather than kept against a restarted server.
    pool: { min: 0, max: poolMax, ...(serving ? { afterCreate: discardOnTimeout } : {}) },
    acquireConnectionTimeout: connectMs,
  };
}

/**
 * A query that timed out may still be running, or its answer still on the
 * way: the connection is closed rather than handed to the next request,
 * which would queue behind it (knex discards a connection marked disposed).
 */
function discardOnTimeout(
  connection: PgConnection,
  done: (error: Error | null, connection: PgConnection) => void,
) {
  const query = connection.query.bind(connection);
  const discard = (error: unknown) => {
    if (error instanceof Error && error.message === 'Query read timeout') {
      connection.__knex__disposed = error;
      connection.end().catch(() => {});
    }
  };
  // knex calls query(config, callback); pg's own promise form is covered too.
  connection.query = (...args: unknown[]) => {
    const callback = args.at(-1);
    if (typeof callback === 'function') {
      args[args.length - 1] = (error: unknown, result: unknown) => {
        discard(error);
        callback(error, result);
      };
      return query(...args);
    }
    const result = query(...args);
    if (result instanceof Promise) result.catch(discard);
    return result;
  };
  done(null, connection);
}

/** The part of a pg Client the timeout guard touches. */
interface PgConnection {
  query: (...args: unknown[]) => unknown;
  end(): Promise<void>;
  __knex__disposed?: unknown;
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
  const { url, dataDir, poolMax = 10, timeoutMs = SERVE_TIMEOUT_MS, logger } = options;
  if (url === undefined) return openPglite(dataDir, logger);
  const db = knex(postgresConfig(url, poolMax, logger, timeoutMs));
  return createKnexDurableStore(db, {
    kind: 'postgres',
    // Two connections: one holds the advisory lock, the other migrates.
    openMigrationDb: () => knex(postgresConfig(url, 2, logger, undefined)),
  });
}
