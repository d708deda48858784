/**
 * Real PostgreSQL and Redis for the tests that need them.
 *
 * Each such test file probes its service once at the top (top-level await),
 * then registers its tests through `serviceTest(test, probe)`:
 * - reachable → the tests run;
 * - unreachable → the tests are skipped with a message saying why, or, when
 *   POSTERN_TEST_REQUIRE_SERVICES=1 (CI), one failing test names the service,
 *   so a broken CI machine cannot pass by skipping.
 *
 * Isolation: each test file gets its own database (`createTestDatabase`,
 * dropped afterwards) and its own Redis key prefix (`uniqueKeyPrefix`, every
 * key deleted afterwards).
 */
import { randomBytes } from 'node:crypto';
import type { ExecutionContext, TestFn } from 'ava';
import { Redis } from 'ioredis';
import pg from 'pg';

/** CI sets POSTERN_TEST_REQUIRE_SERVICES=1: an unreachable service fails the run instead of skipping. */
export const requireServices = process.env.POSTERN_TEST_REQUIRE_SERVICES === '1';

/** The server tests create their databases on (the URL's database is only used to connect). */
export const postgresTestUrl =
  process.env.POSTERN_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The Redis tests use, each under its own key prefix. */
export function redisTestUrl(): string {
  return process.env.POSTERN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

export interface Probe {
  /** `PostgreSQL` or `Redis`, for messages. */
  service: string;
  available: boolean;
  /** Why it is unavailable, ready to print; empty when available. */
  reason: string;
}

const PROBE_TIMEOUT_MS = 3_000;

function describe(error: unknown): string {
  const { message, code } = (error ?? {}) as { message?: string; code?: string };
  return message || code || String(error);
}

function unavailable(service: string, where: string, error: unknown): Probe {
  return {
    service,
    available: false,
    reason: `${service} not reachable at ${where} (${describe(error)})`,
  };
}

/** URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Whether PostgreSQL answers at POSTERN_TEST_DATABASE_URL. */
export async function probePostgres(): Promise<Probe> {
  const client = new pg.Client({
    connectionString: postgresTestUrl,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return { service: 'PostgreSQL', available: true, reason: '' };
  } catch (error) {
    return unavailable('PostgreSQL', redact(postgresTestUrl), error);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Whether Redis answers at POSTERN_TEST_REDIS_URL. */
export async function probeRedis(): Promise<Probe> {
  const url = redisTestUrl();
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // The 'error' event carries the socket error (ECONNREFUSED ...); the rejection only says "closed".
  let socketError: unknown;
  client.on('error', (error) => {
    socketError ??= error;
  });
  try {
    await client.connect();
    await client.ping();
    return { service: 'Redis', available: true, reason: '' };
  } catch (error) {
    return unavailable('Redis', redact(url), socketError ?? error);
  } finally {
    client.disconnect();
  }
}

/**
 * The `test` function to register a file's tests with, given its service probe:
 * `test` itself when the service is up. When it is down, a variant whose tests
 * (plain and serial) are skipped while hooks stay registered (so cleanup hooks
 * must cope with nothing having been opened), after printing why; with
 * POSTERN_TEST_REQUIRE_SERVICES=1 it also registers one failing test.
 */
export function serviceTest<Context>(test: TestFn<Context>, probe: Probe): TestFn<Context> {
  if (probe.available) return test;
  if (requireServices) {
    test(`${probe.service} is reachable (POSTERN_TEST_REQUIRE_SERVICES=1)`, (t) => {
      t.fail(`${probe.reason}; POSTERN_TEST_REQUIRE_SERVICES=1 requires it`);
    });
  } else {
    console.warn(`${probe.reason}; skipping (set POSTERN_TEST_REQUIRE_SERVICES=1 to fail instead)`);
  }
  // Only without the service and outside CI (POSTERN_TEST_REQUIRE_SERVICES=1 added a failing test above):
  // a newcomer's laptop without PostgreSQL or Redis skips these tests with the message printed.
  const skipped = ((...args: Parameters<TestFn<Context>['skip']>) => test.skip(...args)) as TestFn<Context>;
  const serial = Object.assign(
    (...args: Parameters<TestFn<Context>['serial']['skip']>) => test.serial.skip(...args),
    test.serial,
    { only: test.serial.skip, failing: test.serial.failing.skip },
  );
  return Object.assign(skipped, test, {
    serial,
    only: test.skip,
    failing: Object.assign(
      (...args: Parameters<TestFn<Context>['skip']>) => test.failing.skip(...args),
      test.failing,
    ),
  }) as TestFn<Context>;
}

/** `postern_test_<random>`: safe to interpolate (hex only). */
function uniqueDatabaseName(): string {
  return `postern_test_${randomBytes(6).toString('hex')}`;
}

export interface TestDatabase {
  name: string;
  /** Connects to the new, empty database. */
  url: string;
  /** Drops the database, closing any connection still open to it. Safe to call twice. */
  drop(): Promise<void>;
}

async function withAdmin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: postgresTestUrl,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Creates an empty, uniquely named database on the test server. Register its
 * `drop()` in `test.after.always` (or `t.teardown`) so it goes even on failure.
 * @throws {Error} when the server is unreachable or refuses CREATE DATABASE.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueDatabaseName();
  await withAdmin((client) => client.query(`create database ${name}`));
  const url = new URL(postgresTestUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      // WITH (FORCE), PostgreSQL 13+: a store a failed test left open must not keep the database alive.
      await withAdmin((client) => client.query(`drop database if exists ${name} with (force)`));
    },
  };
}

/** A fresh database dropped when the test `t` ends, pass or fail. */
export async function createTestDatabaseFor(t: ExecutionContext<unknown>): Promise<TestDatabase> {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  return database;
}

/** `postern-test:<random>:`: a key prefix no other test uses. */
export function uniqueKeyPrefix(): string {
  return `postern-test:${randomBytes(6).toString('hex')}:`;
}

/**
 * Deletes every key under `prefix` (SCAN + DEL, never KEYS).
 * @throws {Error} when Redis is unreachable.
 */
export async function deleteKeysWithPrefix(prefix: string, url = redisTestUrl()): Promise<number> {
  if (!prefix) throw new Error('refusing to delete keys without a prefix');
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {});
  // SCAN MATCH is a glob: escape its metacharacters in the prefix.
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await client.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    client.disconnect();
  }
}
