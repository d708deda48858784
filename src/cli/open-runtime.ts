/**
 * What every command that touches storage does first: load the config, find
 * the secret, open the stores and prove they answer. Failures become
 * CommandErrors with the right exit code: 1 for configuration, 2 for a
 * service that cannot be reached.
 */
import { join } from 'node:path';
import type { Config } from '../config/types.ts';
import type { Logger } from '../logging/create-logger.ts';
import { type ResolvedSecret, resolveSecret } from '../secrets/resolve-secret.ts';
import { DataDirLockedError, StoreUnavailableError } from '../storage/errors.ts';
import { openStores } from '../storage/open-stores.ts';
import type { DurableStore, EphemeralStore } from '../storage/types.ts';
import { CommandError, EXIT } from './exit-codes.ts';
import { loadConfigOrFail } from './load-config-or-fail.ts';

export interface Runtime {
  config: Config;
  secret: ResolvedSecret;
  durable: DurableStore;
  ephemeral: EphemeralStore;
  close(): Promise<void>;
}

export async function openRuntime(
  configDir: string | undefined,
  logger: Logger,
  { config: loaded }: { config?: Config } = {},
): Promise<Runtime> {
  const config = loaded ?? (await loadConfigOrFail(configDir));
  const { server } = config;
  const secret = await resolveSecret({ secret: server.secret, dataDir: server.data_dir });
  try {
    const stores = await openStores({
      databaseUrl: server.database.url,
      databasePoolMax: server.database.pool_max,
      databaseTimeoutMs: server.database.timeout_ms,
      dataDir: join(server.data_dir, 'pglite'),
      redisUrl: server.redis.url,
      redisKeyPrefix: server.redis.key_prefix,
      redisTimeoutMs: server.redis.timeout_ms,
      logger,
    });
    try {
      await Promise.all([stores.durable.ping(), stores.ephemeral.ping()]);
    } catch (error) {
      await stores.close().catch(() => {});
      throw error;
    }
    return { config, secret, ...stores };
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      throw new CommandError(
        `the embedded database in ${error.dataDir} is open in another Postern process (${error.holder}); ` +
          'embedded mode is one process: stop the server first, or run against PostgreSQL (DATABASE_URL). ' +
          `If no such process runs any more, remove ${error.dataDir}.lock.`,
        EXIT.invalid,
      );
    }
    if (error instanceof StoreUnavailableError) {
      const where = error.service === 'database' ? 'PostgreSQL (DATABASE_URL)' : 'Redis (REDIS_URL)';
      throw new CommandError(`${where} is not reachable: ${describeCause(error)}`, EXIT.unavailable);
    }
    throw error;
  }
}

function describeCause(error: Error): string {
  const cause = error.cause as { message?: string; code?: string } | undefined;
  return cause?.message || cause?.code || error.message;
}

/** Refuses to work on a schema that is behind: migrations are the operator's explicit step. */
/** The error for a `--pool` the configuration does not have, listing the pools it has. */
export function noSuchPool(config: Config, poolId: string): CommandError {
  const known = config.pools.map((pool) => pool.id).join(', ');
  return new CommandError(`no pool "${poolId}" (pools: ${known})`, EXIT.invalid);
}

export async function assertMigrated(durable: { pendingMigrations(): Promise<string[]> }): Promise<void> {
  const pending = await durable.pendingMigrations();
  if (pending.length > 0) {
    throw new CommandError(
      `the database schema is behind (${pending.length} pending migration(s)); run \`postern migrate\` first`,
      EXIT.invalid,
    );
  }
}
