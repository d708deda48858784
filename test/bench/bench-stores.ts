/**
 * The PostgreSQL and Redis the bench runs Postern on, and what it reads from
 * them from outside. Lifecycle: a fresh database `postern_bench_<random>`
 * (dropped at the end, WITH (FORCE)) and a unique Redis key prefix (its keys
 * deleted at the end). Counters, beside the round trips counted on the wire
 * (store-round-trips.ts):
 *
 * - PostgreSQL: `xact_commit + xact_rollback` of the bench database in
 *   pg_stat_database (only Postern uses that database). PostgreSQL 15 keeps a
 *   backend's counts to itself for up to a second under load, and an idle
 *   backend flushes them only after PGSTAT_IDLE_INTERVAL (10 s): `settledXacts`
 *   waits that long after the last activity before reading. A transaction of
 *   several statements counts once; the trace (trace-sign-in.ts) counts statements.
 * - Redis: the sum of `calls` in INFO commandstats (this server is shared with
 *   other work on the machine: `background` says how busy it is without the
 *   bench). Commands a Lua script runs are counted too.
 *
 * CPU of the stores: the processes of the bench database's backends plus
 * PostgreSQL's own auxiliary processes (walwriter, checkpointer, …; other
 * databases' backends are left out, since the server is shared), and every
 * redis-server process.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { deleteKeysWithPrefix } from '../support/services.ts';
import { pidsNamed } from './proc-cpu.ts';

export const POSTGRES_ADMIN_URL =
  process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** PGSTAT_IDLE_INTERVAL (10 s) and a margin. */
const STATS_FLUSH_MS = 10_500;

export interface BenchDatabase {
  name: string;
  url: string;
  /** A connection to the bench database (seeding, the scale filler), opened once `postern migrate` made the tables. */
  open(): Promise<pg.Client>;
  /** Drops the database, closing whatever is still connected. Safe to call twice. */
  drop(): Promise<void>;
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function asAdmin(sql: string): Promise<void> {
  const admin = await connect(POSTGRES_ADMIN_URL);
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** Creates `postern_bench_<random>` (empty: `postern migrate` fills it). */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `postern_bench_${randomBytes(5).toString('hex')}`;
  await asAdmin(`create database ${name}`);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  let client: Promise<pg.Client> | undefined;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    open() {
      client ??= connect(url.toString());
      return client;
    },
    async drop() {
      if (dropped) return;
      dropped = true;
      await client?.then((open) => open.end()).catch(() => {});
      // WITH (FORCE), PostgreSQL 13+: a Postern that did not stop must not keep the database alive.
      await asAdmin(`drop database if exists ${name} with (force)`);
    },
  };
}

/** Sets (or, with `undefined`, resets) a parameter for new sessions of `database`: the trace's log_statement. */
export function alterDatabase(database: string, parameter: string, value: string | undefined): Promise<void> {
  return asAdmin(
    value === undefined
      ? `alter database ${database} reset ${parameter}`
      : `alter database ${database} set ${parameter} = '${value.replaceAll("'", "''")}'`,
  );
}

/** `postern-bench:<random>:`, a prefix nothing else uses. */
export function benchKeyPrefix(): string {
  return `postern-bench:${randomBytes(5).toString('hex')}:`;
}

export function deleteBenchKeys(prefix: string): Promise<number> {
  return deleteKeysWithPrefix(prefix, REDIS_URL);
}

/** Reads the stores' counters and processes; see the header. */
export class StoreCounters {
  readonly #admin: pg.Client | undefined;
  readonly #redis: Redis | undefined;
  readonly #database: string | undefined;
  readonly #watched: string[] = [];
  #lastPostgresActivity = 0;

  private constructor(admin: pg.Client | undefined, redis: Redis | undefined, database: string | undefined) {
    this.#admin = admin;
    this.#redis = redis;
    this.#database = database;
  }

  /**
   * @param options.database The bench database; undefined in embedded mode (nothing of PostgreSQL is read).
   * @param options.redis Whether the servers use Redis (not in embedded mode).
   */
  static async open({ database, redis }: { database?: string; redis: boolean }): Promise<StoreCounters> {
    const admin = database ? await connect(POSTGRES_ADMIN_URL) : undefined;
    const client = redis ? new Redis(REDIS_URL, { maxRetriesPerRequest: 1 }) : undefined;
    return new StoreCounters(admin, client, database);
  }

  /** Also charge the backends of `database` to PostgreSQL's CPU (the --scale run's second database). */
  watchDatabase(database: string): void {
    this.#watched.push(database);
  }

  /** Processes whose CPU is PostgreSQL's share: the bench databases' backends and the auxiliary ones. */
  async postgresPids(): Promise<number[]> {
    if (!this.#admin) return [];
    const { rows } = await this.#admin.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = any($1) or datname is null',
      [[this.#database, ...this.#watched]],
    );
    return rows.map((row) => row.pid);
  }

  redisPids(): number[] {
    return this.#redis ? pidsNamed(['redis-server']) : [];
  }

  /** Calls per command since Redis started (INFO commandstats), INFO itself left out. */
  async redisCalls(): Promise<Map<string, number>> {
    const calls = new Map<string, number>();
    if (!this.#redis) return calls;
    const info = await this.#redis.info('commandstats');
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (match[1] !== 'info') calls.set(match[1] as string, Number(match[2]));
    }
    return calls;
  }

  /** Say that Postern just stopped using PostgreSQL (its counts are still in flight). */
  markPostgresActivity(): void {
    this.#lastPostgresActivity = Date.now();
  }

  /** The bench database's transactions, once every backend has flushed its counts. */
  async settledXacts(): Promise<number> {
    if (!this.#admin) return 0;
    const wait = this.#lastPostgresActivity + STATS_FLUSH_MS - Date.now();
    if (wait > 0) await sleep(wait);
    const { rows } = await this.#admin.query<{ xacts: string }>(
      'select xact_commit + xact_rollback as xacts from pg_stat_database where datname = $1',
      [this.#database],
    );
    return Number(rows[0]?.xacts ?? 0);
  }

  async close(): Promise<void> {
    this.#redis?.disconnect();
    await this.#admin?.end().catch(() => {});
  }
}

/** Calls per command between two INFO commandstats readings. */
export function callsBetween(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [command, calls] of after) {
    const added = calls - (before.get(command) ?? 0);
    if (added > 0) delta.set(command, added);
  }
  return delta;
}

export function totalCalls(calls: Map<string, number>): number {
  let total = 0;
  for (const value of calls.values()) total += value;
  return total;
}
