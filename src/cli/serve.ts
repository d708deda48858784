/**
 * `postern serve`: opens the stores, composes the server over them
 * (src/compose-server.ts), and listens. In embedded mode it migrates by itself so `npm start` needs no
 * other step; against PostgreSQL it refuses to start on a schema that is
 * behind (migrations are the operator's explicit step).
 *
 * Shutdown on SIGTERM/SIGINT is graceful (src/http/drainable-server.ts):
 * /readyz answers 503 shutting_down at once; after server.shutdown_delay
 * (default 0) new connections are refused; every request already sent is
 * answered with `Connection: close`, idle connections close, and only once
 * the last connection has closed do the stores. A second signal, or 10 s
 * after the delay, forces the exit.
 */

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ComposedServer, composeServer } from '../compose-server.ts';
import type { Config } from '../config/types.ts';
import { createDrainableServer } from '../http/drainable-server.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Logger } from '../logging/create-logger.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';
import type { DurableStore, EphemeralStore } from '../storage/types.ts';
import { assertMigrated, openRuntime, type Runtime } from './open-runtime.ts';

const SHUTDOWN_GRACE_MS = 10_000;
const SWEEP_INTERVAL_MS = 10 * 60_000;

export interface RunningServer {
  server: Server;
  /** The URL it listens on (the port may have been chosen by the OS). */
  url: string;
  registry: PoolRegistry;
  runtime: Runtime;
  close(): Promise<void>;
}

export interface StartServerOptions {
  config: Config;
  logger: Logger;
  /** (Optional) Overrides the configured port; 0 picks a free one. */
  port?: number;
  metrics?: Metrics;
  /** (Optional) Seconds between signing key checks. Defaults to 30. */
  keyRefreshSeconds?: number;
  /** (Optional) What the server uses in place of the stores it opened (a test counting their calls). */
  wrapStores?: (stores: { durable: DurableStore; ephemeral: EphemeralStore }) => {
    durable: DurableStore;
    ephemeral: EphemeralStore;
  };
  /** (Optional) Milliseconds since the epoch, for the login flow. Defaults to the system clock. */
  clock?: () => number;
}

/** Starts one server process (a worker, or the only process). */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { config, logger } = options;
  const runtime = await openRuntime(config.server.config_dir, logger, { config });
  let composed: ComposedServer | undefined;
  let closing: Promise<void> | undefined;
  try {
    await prepareDatabase(runtime, logger);
    warnAboutRelaxedDefaults(runtime, logger);
    const stores = options.wrapStores
      ? options.wrapStores({ durable: runtime.durable, ephemeral: runtime.ephemeral })
      : runtime;
    composed = await composeServer({
      config,
      durable: stores.durable,
      ephemeral: stores.ephemeral,
      secret: runtime.secret.secret,
      logger,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      keyRefreshSeconds: options.keyRefreshSeconds,
      shuttingDown: () => closing !== undefined,
    });
    const { app, registry } = composed;
    const { server, drain, destroyConnections } = createDrainableServer(app.callback());
    server.keepAliveTimeout = 65_000; // outlive typical load balancer idle timeouts
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? config.server.port, resolve);
    });

    const sweep = setInterval(() => {
      runtime.durable
        .sweepExpired()
        .catch((error) => logger.warn({ err: error }, 'sweeping expired tokens failed'));
    }, SWEEP_INTERVAL_MS).unref();

    const { port } = server.address() as AddressInfo;
    const close = () => {
      closing ??= (async () => {
        clearInterval(sweep);
        registry.close();
        // In-flight requests use the stores: they close only after the last answer.
        const delayMs = config.server.shutdown_delay * 1000;
        const forced = setTimeout(destroyConnections, delayMs + SHUTDOWN_GRACE_MS - 1000).unref();
        await drain({ delayMs });
        clearTimeout(forced);
        composed?.mailer.close();
        await runtime.close();
      })();
      return closing;
    };
    return { server, url: `http://localhost:${port}`, registry, runtime, close };
  } catch (error) {
    // Stop what started: no key refresh may keep running against closed stores.
    composed?.close();
    await runtime.close().catch(() => {});
    throw error;
  }
}

/** Runs `startServer` until a signal, logging where each pool lives. */
export async function serve(options: StartServerOptions): Promise<void> {
  const { config, logger } = options;
  const running = await startServer(options);
  for (const pool of config.pools) {
    logger.info(
      { pool: pool.id, issuer: pool.issuer },
      `pool ${pool.id} at ${pool.issuer}/.well-known/openid-configuration`,
    );
  }
  logger.info({ url: running.url, public_url: config.server.public_url }, `listening on ${running.url}`);

  let signals = 0;
  const shutdown = (signal: string) => {
    signals += 1;
    if (signals > 1) process.exit(1);
    logger.info({ signal }, 'shutting down');
    setTimeout(() => process.exit(1), config.server.shutdown_delay * 1000 + SHUTDOWN_GRACE_MS).unref();
    running.close().then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

async function prepareDatabase(runtime: Runtime, logger: Logger): Promise<void> {
  if (runtime.durable.kind === 'pglite') {
    const { applied } = await runtime.durable.migrate();
    if (applied.length > 0) logger.info({ applied }, 'embedded database migrated');
    return;
  }
  await assertMigrated(runtime.durable);
}

/** Secure defaults; each relaxed one is said once at boot (STYLE.md rule 12). */
function warnAboutRelaxedDefaults(runtime: Runtime, logger: Logger): void {
  const { server, pools } = runtime.config;
  if (runtime.durable.kind === 'pglite' || server.redis.url === undefined) {
    logger.warn(
      { data_dir: server.data_dir },
      'embedded storage (PGlite and an in-process store): one process, for development; set DATABASE_URL and REDIS_URL in production',
    );
  }
  if (runtime.secret.file) {
    logger.warn(
      { file: runtime.secret.file },
      runtime.secret.generated
        ? `generated a new secret into ${runtime.secret.file}; it encrypts the signing keys, keep it with the data`
        : `using the generated secret in ${runtime.secret.file}`,
    );
  }
  if (server.email.smtp_url === undefined)
    logger.warn('no SMTP_URL: one-time codes and links are written to this log');
  for (const pool of pools) {
    if (pool.passkeys.user_verification !== 'required') {
      logger.warn(
        { pool: pool.id },
        `pool ${pool.id}: user_verification is ${pool.passkeys.user_verification}; passkeys will not count as MFA`,
      );
    }
    if (pool.passkeys.rp.id === 'localhost') {
      logger.warn({ pool: pool.id }, `pool ${pool.id}: RP ID localhost, usable only on this machine`);
    }
  }
}
