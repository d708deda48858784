/**
 * Starts a real Postern server in-process for a test: writes a config
 * directory, loads it like `postern serve` would (environment included), and
 * listens on a free port of localhost, which is also its public URL (Chromium
 * only runs WebAuthn on http for `localhost`).
 */
import { createServer } from 'node:net';
import { type RunningServer, type StartServerOptions, startServer } from '../../src/cli/serve.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import type { Config } from '../../src/config/types.ts';
import { createLogger, type Logger } from '../../src/logging/create-logger.ts';
import { type ConfigDir, writeConfigDir } from './config-dir.ts';
import { TEST_STORE_TIMEOUTS } from './store-timeouts.ts';

export const TEST_SECRET = 'postern-test-secret-0123456789-abcdefghijklmnop';

export interface TestServer extends RunningServer {
  config: Config;
  configDir: ConfigDir;
  /** The public URL (http://localhost:PORT unless given). */
  url: string;
  /** Where this server listens, which may differ from its public URL. */
  listenUrl: string;
  issuer(poolId: string): string;
  stop(): Promise<void>;
}

export interface StartTestServerOptions {
  /** Pool files by id; `${PUBLIC_URL}` in them is the server's URL. */
  pools: Record<string, string>;
  server?: string;
  databaseUrl?: string;
  redisUrl?: string;
  redisKeyPrefix?: string;
  dataDir?: string;
  /** (Optional) A fixed port, e.g. to restart "the same" server. */
  port?: number;
  /** (Optional) The public URL, when it is not this server's own (several servers behind one name). */
  publicUrl?: string;
  env?: Record<string, string>;
  keyRefreshSeconds?: number;
  logger?: Logger;
  /** (Optional) Wraps the stores the server opened (./counting-stores.ts). */
  wrapStores?: StartServerOptions['wrapStores'];
  /** (Optional) The login flow's clock, in milliseconds. */
  clock?: () => number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export function testLogger(): Logger {
  return createLogger({ level: process.env.POSTERN_TEST_LOG ?? 'silent', pretty: false });
}

/**
 * Starts a server on `options.port`, or on a free port. A port found free can
 * be taken before the server listens (every outgoing connection, to
 * PostgreSQL or Redis too, takes one from the same ephemeral range), so a
 * chosen port that turns out busy is chosen again.
 */
export async function startTestServer(options: StartTestServerOptions): Promise<TestServer> {
  if (options.port !== undefined) return startTestServerOn(options.port, options);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTestServerOn(await freePort(), options);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt >= 5) throw error;
    }
  }
}

async function startTestServerOn(port: number, options: StartTestServerOptions): Promise<TestServer> {
  const url = options.publicUrl ?? `http://localhost:${port}`;
  const serverFile = [
    options.server ?? '',
    options.redisKeyPrefix ? `redis:\n  key_prefix: "${options.redisKeyPrefix}"` : '',
    options.dataDir ? `data_dir: ${JSON.stringify(options.dataDir)}` : '',
  ].join('\n');
  const configDir = await writeConfigDir({ server: serverFile, pools: options.pools });
  const env: NodeJS.ProcessEnv = {
    PUBLIC_URL: url,
    PORT: String(port),
    POSTERN_SECRET: TEST_SECRET,
    ...TEST_STORE_TIMEOUTS,
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
    ...options.env,
  };
  try {
    const config = await loadConfig({ dir: configDir.dir, env });
    const running = await startServer({
      config,
      logger: options.logger ?? testLogger(),
      port,
      keyRefreshSeconds: options.keyRefreshSeconds ?? 0,
      ...(options.wrapStores ? { wrapStores: options.wrapStores } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    return {
      ...running,
      config,
      configDir,
      url,
      listenUrl: running.url,
      issuer: (poolId) => `${url}/${poolId}`,
      stop: async () => {
        await running.close();
        await configDir.remove();
      },
    };
  } catch (error) {
    await configDir.remove();
    throw error;
  }
}
