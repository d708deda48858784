/**
 * Chooses and opens the storage backends from configuration:
 *
 * | setting             | durable                  | ephemeral          |
 * |---------------------|--------------------------|--------------------|
 * | databaseUrl         | PostgreSQL               |                    |
 * | (none)              | PGlite under dataDir     |                    |
 * | redisUrl            |                          | Redis              |
 * | (none)              |                          | in-process memory  |
 *
 * It neither migrates nor pings: the caller decides (`postern migrate` is an
 * explicit operator step; boot pings both stores to fail early).
 *
 * Each backend's client is imported when that backend is opened, so a
 * process loads only what it is configured for: no ioredis without a Redis
 * URL, no PGlite with a PostgreSQL URL (open-durable-store.ts).
 */
import { openDurableStore } from './postgres/open-durable-store.ts';
import type { StoreLogger } from './store-logger.ts';
import type { DurableStore, EphemeralStore } from './types.ts';

export type { StoreLogger };

export interface OpenStoresOptions {
  /** (Optional) PostgreSQL URL. Defaults to none: embedded PGlite. */
  databaseUrl?: string;
  /** (Optional) PGlite's data directory. Defaults to in-memory (tests only). Ignored with `databaseUrl`. */
  dataDir?: string;
  /** (Optional) Most PostgreSQL connections this process opens. Defaults to 10. */
  databasePoolMax?: number;
  /** (Optional) How long a request waits for PostgreSQL, in milliseconds. Defaults to SERVE_TIMEOUT_MS. */
  databaseTimeoutMs?: number;
  /** (Optional) Redis URL. Defaults to none: an in-process store (one process only). */
  redisUrl?: string;
  /** (Optional) Prefix of every Redis key. Defaults to `postern:`. */
  redisKeyPrefix?: string;
  /** (Optional) How long a Redis command may go unanswered, in milliseconds. Defaults to 400. */
  redisTimeoutMs?: number;
  /** (Optional) Receives backend connection loss and recovery. */
  logger?: StoreLogger;
}

export interface Stores {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  /** Closes both stores; safe to call once. */
  close(): Promise<void>;
}

async function openEphemeralStore({
  redisUrl,
  redisKeyPrefix: keyPrefix,
  redisTimeoutMs: commandTimeoutMs,
  logger,
}: OpenStoresOptions): Promise<EphemeralStore> {
  if (redisUrl === undefined) {
    const { openMemoryEphemeralStore } = await import('./memory/memory-ephemeral-store.ts');
    return openMemoryEphemeralStore();
  }
  const { openRedisEphemeralStore } = await import('./redis/redis-ephemeral-store.ts');
  return openRedisEphemeralStore({ url: redisUrl, keyPrefix, logger, commandTimeoutMs });
}

/**
 * Opens the durable and the ephemeral store. If the second fails to open, the
 * first is closed again.
 * @throws {Error} when PGlite cannot open its data directory or a URL is malformed.
 *   Unreachable servers do not throw here; `ping()` reports StoreUnavailableError.
 */
export async function openStores(options: OpenStoresOptions = {}): Promise<Stores> {
  const { databaseUrl, dataDir, databasePoolMax, databaseTimeoutMs, logger } = options;
  const durable = await openDurableStore({
    url: databaseUrl,
    dataDir,
    poolMax: databasePoolMax,
    timeoutMs: databaseTimeoutMs,
    logger,
  });
  let ephemeral: EphemeralStore;
  try {
    ephemeral = await openEphemeralStore(options);
  } catch (error) {
    await durable.close().catch(() => {});
    throw error;
  }
  return {
    durable,
    ephemeral,
    async close() {
      const results = await Promise.allSettled([ephemeral.close(), durable.close()]);
      const failure = results.find((result) => result.status === 'rejected');
      if (failure) throw failure.reason;
    },
  };
}
