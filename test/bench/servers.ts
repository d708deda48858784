/**
 * The servers under test, each its own child process the bench can read in
 * /proc: Postern (`node bin/postern.js serve`, optionally `--workers N` and
 * `--cpu-prof`) with a generated configuration directory, and the bare
 * oidc-provider (bare-provider.ts). Both answer on the loopback at
 * `http://localhost:PORT` (their public origin; RP ID `localhost`), and the
 * bench connects to 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type ConfigDir, writeConfigDir } from '../support/config-dir.ts';
import { readyWorkers, runPostern } from '../support/spawn-postern.ts';
import type { Target } from './flows.ts';

export const POOL_ID = 'bench';
/** Loopback, as RFC 8252 §7.3 allows; nothing listens there, the bench reads the code from the redirect. */
export const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const CONNECT_HOST = '127.0.0.1';
const START_TIMEOUT_MS = 120_000;
const POSTERN_BIN = fileURLToPath(new URL('../../bin/postern.js', import.meta.url));
const BENCH_SECRET = `postern-bench-secret-${randomBytes(16).toString('hex')}`;
const WEB_SECRET = randomBytes(24).toString('hex');
const MACHINE_SECRET = randomBytes(24).toString('hex');

export interface ServerUnderTest {
  target: Target;
  /** The process whose tree (workers included) the bench charges. */
  pid: number;
  stop(): Promise<void>;
  output(): string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, CONNECT_HOST, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function target(name: Target['name'], origin: string, issuer: string): Target {
  return {
    name,
    connectHost: CONNECT_HOST,
    origin,
    issuer,
    web: { id: 'bench-web', secret: WEB_SECRET, redirectUri: REDIRECT_URI },
    machine: { id: 'bench-machine', secret: MACHINE_SECRET, scope: 'admin' },
    rpAgent: new Agent({ keepAlive: true, maxSockets: 64 }),
  };
}

/**
 * A smart pool (usernameless passkeys first, email codes for sign-up), a
 * first-party confidential web client that may refresh, and a machine client.
 */
const POOL_FILE = `
display_name: Bench
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [passkey, email_otp]
clients:
  - client_id: bench-web
    client_secret: ${WEB_SECRET}
    token_endpoint_auth_method: client_secret_basic
    redirect_uris: ["${REDIRECT_URI}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
    first_party: true
  - client_id: bench-machine
    client_secret: ${MACHINE_SECRET}
    grant_types: [client_credentials]
    scope: admin
`;

export interface PosternSetup {
  /** Unset in embedded mode. */
  databaseUrl?: string;
  redisUrl?: string;
  redisKeyPrefix: string;
  /** Embedded mode: where PGlite and the generated secret live. */
  dataDir?: string;
  smtpUrl?: string;
  /** (Optional) More environment for Postern, e.g. its store timeouts. */
  env?: Record<string, string>;
}

/** Writes the configuration directory every Postern of this run shares. */
export function writePosternConfig(setup: PosternSetup): Promise<ConfigDir> {
  const server = [
    'log_level: warn',
    `redis:\n  key_prefix: "${setup.redisKeyPrefix}"`,
    setup.dataDir ? `data_dir: ${JSON.stringify(setup.dataDir)}` : '',
  ].join('\n');
  return writeConfigDir({ server, pools: { [POOL_ID]: POOL_FILE } });
}

function posternEnv(config: ConfigDir, setup: PosternSetup, port: number): Record<string, string> {
  return {
    POSTERN_CONFIG_DIR: config.dir,
    PUBLIC_URL: `http://localhost:${port}`,
    PORT: String(port),
    LOG_LEVEL: 'warn',
    ...(setup.databaseUrl ? { DATABASE_URL: setup.databaseUrl, POSTERN_SECRET: BENCH_SECRET } : {}),
    ...(setup.redisUrl ? { REDIS_URL: setup.redisUrl } : {}),
    ...(setup.smtpUrl ? { SMTP_URL: setup.smtpUrl } : {}),
    ...setup.env,
  };
}

/** `postern migrate` on the bench database. */
export async function migrate(config: ConfigDir, setup: PosternSetup): Promise<void> {
  const result = await runPostern(['migrate'], posternEnv(config, setup, 3000));
  if (result.code !== 0) throw new Error(`postern migrate exited with ${result.code}:\n${result.stderr}`);
}

export interface StartPosternOptions {
  workers?: number;
  /** (Optional) Passes `--cpu-prof --cpu-prof-dir=<dir>` to every Postern process's node. */
  cpuProfDir?: string;
}

export async function startPostern(
  config: ConfigDir,
  setup: PosternSetup,
  { workers = 1, cpuProfDir }: StartPosternOptions = {},
): Promise<ServerUnderTest> {
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const readyz = `http://${CONNECT_HOST}:${port}/readyz`;
  // Node flags on the command line: NODE_OPTIONS refuses --cpu-prof. A cluster's
  // workers inherit them (cluster.fork passes process.execArgv).
  const nodeFlags = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const server = await spawnServer(
    'postern',
    [...nodeFlags, POSTERN_BIN, 'serve', ...(workers > 1 ? ['--workers', String(workers)] : [])],
    { PATH: process.env.PATH, HOME: process.env.HOME, ...posternEnv(config, setup, port) },
    async () =>
      (await fetch(readyz).then(
        (response) => response.ok,
        () => false,
      )) &&
      (workers === 1 || (await readyWorkers(`http://${CONNECT_HOST}:${port}/metrics`)) === workers),
  );
  return { ...server, target: target('postern', origin, `${origin}/${POOL_ID}`) };
}

/**
 * Spawns `node …args` and resolves once `ready()` says so.
 * @throws {Error} with the process's output when it exits first or is not ready within 2 minutes.
 */
async function spawnServer(
  label: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (output: string) => Promise<boolean>,
): Promise<Omit<ServerUnderTest, 'target'>> {
  const child: ChildProcess = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = Date.now();
  while (!(await ready(output))) {
    if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}:\n${output}`);
    if (Date.now() - started > START_TIMEOUT_MS) {
      child.kill('SIGKILL');
      throw new Error(`${label} was not ready within ${START_TIMEOUT_MS / 1000} s:\n${output}`);
    }
    await sleep(200);
  }
  return {
    pid: child.pid as number,
    output: () => output,
    async stop() {
      // SIGTERM: a graceful exit, which is also when node writes a CPU profile.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const BARE_SCRIPT = fileURLToPath(new URL('./bare-provider.ts', import.meta.url));

export async function startBareProvider({
  redisUrl,
  redisKeyPrefix,
  accounts,
}: {
  redisUrl?: string;
  redisKeyPrefix: string;
  accounts: number;
}): Promise<ServerUnderTest> {
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const server = await spawnServer(
    'bare-provider',
    ['--import', 'tsx', BARE_SCRIPT],
    {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BARE_PORT: String(port),
      BARE_ORIGIN: origin,
      BARE_WEB_SECRET: WEB_SECRET,
      BARE_MACHINE_SECRET: MACHINE_SECRET,
      BARE_REDIRECT_URI: REDIRECT_URI,
      BARE_ACCOUNTS: String(accounts),
      BARE_KEY_PREFIX: `${redisKeyPrefix}bare:`,
      ...(redisUrl ? { BARE_REDIS_URL: redisUrl } : {}),
    },
    async (output) => output.includes('listening'),
  );
  return { ...server, target: target('bare', origin, origin) };
}
