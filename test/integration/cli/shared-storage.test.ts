/**
 * The operator's path with PostgreSQL and Redis, through the real command:
 * migrate (idempotent, concurrent-safe), serve refusing an unmigrated or
 * unreachable database, two processes sharing state, --workers (cluster-wide
 * metrics, also while a worker lags), keys rotate.
 */
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { migrations } from '../../../migrations/index.ts';
import { type ConfigDir, minimalPool, writeConfigDir } from '../../support/config-dir.ts';
import { freePort, TEST_SECRET } from '../../support/postern-server.ts';
import {
  createTestDatabaseFor,
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  uniqueKeyPrefix,
} from '../../support/services.ts';
import {
  childPids,
  type PosternProcess,
  readyWorkers,
  runPostern,
  startPosternProcess,
} from '../../support/spawn-postern.ts';

const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
const test = serviceTest(serviceTest(anyTest as TestFn, postgres), redis);

const ADMIN_SECRET = 'admin-secret-0123456789-abcdefghijklmnop';

async function setup(t: ExecutionContext, { publicPort }: { publicPort?: number } = {}) {
  const database = await createTestDatabaseFor(t);
  const prefix = uniqueKeyPrefix();
  t.teardown(() => deleteKeysWithPrefix(prefix));
  const port = publicPort ?? (await freePort());
  const publicUrl = `http://localhost:${port}`;
  const pool = `${minimalPool(publicUrl)}clients:\n  - client_id: admin\n    client_secret: ${ADMIN_SECRET}\n    grant_types: [client_credentials]\n    scope: admin\n`;
  const config: ConfigDir = await writeConfigDir({
    server: `redis:\n  key_prefix: "${prefix}"\n`,
    pools: { acme: pool },
  });
  t.teardown(() => config.remove());
  const env = {
    POSTERN_CONFIG_DIR: config.dir,
    DATABASE_URL: database.url,
    REDIS_URL: redisTestUrl(),
    POSTERN_SECRET: TEST_SECRET,
    PUBLIC_URL: publicUrl,
    PORT: String(port),
  };
  return { env, publicUrl, port };
}

function stopAll(t: ExecutionContext, processes: PosternProcess[]) {
  t.teardown(() => Promise.all(processes.map((process) => process.stop('SIGKILL'))));
}

async function clientCredentials(url: string) {
  const response = await fetch(`${url}/acme/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }),
  });
  return ((await response.json()) as { access_token: string }).access_token;
}

async function introspect(url: string, token: string) {
  const response = await fetch(`${url}/acme/token/introspection`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ token }),
  });
  return (await response.json()) as { active: boolean };
}

test('migrate applies the schema once; a second run and a concurrent run change nothing', async (t) => {
  const { env } = await setup(t);
  const [first, concurrent] = await Promise.all([runPostern(['migrate'], env), runPostern(['migrate'], env)]);
  t.is(first.code, 0, first.stderr);
  t.is(concurrent.code, 0, concurrent.stderr);
  const outputs = [first.stdout.trim(), concurrent.stdout.trim()].sort();
  t.deepEqual(outputs, [
    `Applied ${migrations.length} migration(s): ${migrations.map((migration) => migration.name).join(', ')}.`,
    'Database is up to date.',
  ]);
  const again = await runPostern(['migrate'], env);
  t.is(again.stdout.trim(), 'Database is up to date.');
});

test('serve refuses an unmigrated database (exit 1) and an unreachable one (exit 2)', async (t) => {
  const { env } = await setup(t);
  const unmigrated = await runPostern(['serve'], env);
  t.is(unmigrated.code, 1);
  t.regex(unmigrated.stderr, /run `postern migrate` first/);
  // Each worker fails the same way; the cluster exits with their code instead of hanging.
  const unmigratedCluster = await runPostern(['serve', '--workers', '2'], env);
  t.is(unmigratedCluster.code, 1);
  t.regex(unmigratedCluster.stderr, /run `postern migrate` first/);

  const unreachable = await runPostern(['serve'], {
    ...env,
    DATABASE_URL: 'postgres://postern@127.0.0.1:1/postern',
  });
  t.is(unreachable.code, 2);
  t.regex(unreachable.stderr, /PostgreSQL \(DATABASE_URL\) is not reachable/);
  const noRedis = await runPostern(['migrate'], { ...env, REDIS_URL: 'redis://127.0.0.1:1' });
  t.is(noRedis.code, 2);
  t.regex(noRedis.stderr, /Redis \(REDIS_URL\) is not reachable/);
});

test('two serve processes share keys and accept each other’s tokens; keys rotate for new processes', async (t) => {
  const { env, publicUrl } = await setup(t);
  t.is((await runPostern(['migrate'], env)).code, 0);
  const otherPort = await freePort();
  const a = await startPosternProcess(['serve'], env, { readyUrl: `${publicUrl}/readyz` });
  const b = await startPosternProcess(['serve', '--port', String(otherPort)], env, {
    readyUrl: `http://localhost:${otherPort}/readyz`,
  });
  stopAll(t, [a, b]);
  const jwks = async (url: string) =>
    (await (await fetch(`${url}/acme/jwks`)).json()) as { keys: Array<{ kid: string }> };
  const before = await jwks(publicUrl);
  t.deepEqual(await jwks(`http://localhost:${otherPort}`), before);

  const token = await clientCredentials(publicUrl);
  t.true((await introspect(`http://localhost:${otherPort}`, token)).active);

  const rotated = await runPostern(['keys', 'rotate', '--pool', 'acme'], env);
  t.is(rotated.code, 0, rotated.stderr);
  t.regex(rotated.stdout, /Pool acme: new keys .* are published within 30 s/);
  t.regex(rotated.stdout, /They sign from \d{4}-\d\d-\d\dT/);
  const unknownPool = await runPostern(['keys', 'rotate', '--pool', 'nope'], env);
  t.is(unknownPool.code, 1);
  t.regex(unknownPool.stderr, /no pool "nope"/);

  t.is(await b.stop(), 0);
  const c = await startPosternProcess(['serve', '--port', String(otherPort)], env, {
    readyUrl: `http://localhost:${otherPort}/readyz`,
  });
  stopAll(t, [c]);
  const after = await jwks(`http://localhost:${otherPort}`);
  t.is(after.keys.length, 4, 'two new keys, and the two old ones still published');
  t.true(before.keys.every((key) => after.keys.some((published) => published.kid === key.kid)));
  t.true((await introspect(`http://localhost:${otherPort}`, token)).active, 'tokens outlive a rotation');
});

const TOKEN_SERIES =
  /postern_http_request_duration_seconds_count\{method="POST",route="\/:pool\/oidc\/token",status="200"\} (\d+)/g;

/** The token endpoint's request counts in a metrics text: one entry per series. */
const tokenCounts = (metrics: string) => [...metrics.matchAll(TOKEN_SERIES)].map((match) => Number(match[1]));

test('serve --workers 2 shares one port and answers metrics for the whole cluster', async (t) => {
  const { env, publicUrl } = await setup(t);
  t.is((await runPostern(['migrate'], env)).code, 0);
  // /readyz answers once the first worker listens; wait for both.
  const cluster = await startPosternProcess(['serve', '--workers', '2'], env, {
    readyUrl: `${publicUrl}/readyz`,
    workers: 2,
  });
  stopAll(t, [cluster]);
  const tokens = await Promise.all(Array.from({ length: 6 }, () => clientCredentials(publicUrl)));
  const checks = await Promise.all(tokens.map((token) => introspect(publicUrl, token)));
  t.true(checks.every((check) => check.active));
  const response = await fetch(`${publicUrl}/metrics`);
  const metrics = await response.text();
  t.is(response.status, 200, metrics);
  t.deepEqual(tokenCounts(metrics), [6], 'one aggregated series, counting both workers');
  t.regex(metrics, /^postern_cluster_workers_ready 2$/m);
  t.is(await cluster.stop('SIGTERM'), 0);
});

test('cluster metrics skip a worker still starting, and answer 503 metrics_unavailable while a ready one is stuck', async (t) => {
  const { env, publicUrl } = await setup(t);
  t.is((await runPostern(['migrate'], env)).code, 0);
  // SIGSTOP plays a loaded machine that starves one worker: first while it
  // starts (before it can even hear the primary), then while it serves.
  let held: Promise<number | undefined> = Promise.resolve(undefined);
  const cluster = await startPosternProcess(['serve', '--workers', '2'], env, {
    readyUrl: `${publicUrl}/readyz`,
    onSpawn: (child) => {
      held = holdFirstWorker(child.pid as number);
      // A stopped worker cannot notice its primary die: kill it, pass or fail.
      t.teardown(async () => signal(await held, 'SIGKILL'));
    },
  });
  stopAll(t, [cluster]);
  const worker = await held;
  if (worker === undefined) return t.fail('the primary forked no worker');

  await Promise.all(Array.from({ length: 3 }, () => clientCredentials(publicUrl)));
  const whileStarting = await fetch(`${publicUrl}/metrics`);
  const partial = await whileStarting.text();
  t.is(whileStarting.status, 200, partial);
  t.deepEqual(tokenCounts(partial), [3], 'the serving worker’s requests, without waiting for the other');
  t.regex(partial, /^postern_cluster_workers_ready 1$/m);

  signal(worker, 'SIGCONT');
  t.is(await eventually(() => readyWorkers(`${publicUrl}/metrics`), 2), 2);

  signal(worker, 'SIGSTOP');
  const stuck = await metricsOnNewConnections(`${publicUrl}/metrics`);
  t.is(stuck.status, 503, stuck.body);
  t.is((JSON.parse(stuck.body) as { error: string }).error, 'metrics_unavailable');

  signal(worker, 'SIGCONT');
  t.is(await eventually(() => readyWorkers(`${publicUrl}/metrics`), 2), 2);
  const recovered = await (await fetch(`${publicUrl}/metrics`)).text();
  t.deepEqual(tokenCounts(recovered), [3], 'the whole cluster again; nothing was lost');
  t.is(await cluster.stop('SIGTERM'), 0);
});

/**
 * SIGSTOPs the first worker `primary` forks, as soon as it runs (long before
 * it is ready); undefined if the primary exits first. Not earlier: a process
 * waits for its forked child to exec (workers, and tsx's esbuild), so a child
 * stopped before that would stop the primary too. Until it execs, a child
 * shows its parent's command line and environment; a worker's has
 * NODE_UNIQUE_ID, which node:cluster gives it.
 */
async function holdFirstWorker(primary: number): Promise<number | undefined> {
  for (;;) {
    let children: number[];
    try {
      children = childPids(primary);
    } catch {
      return undefined; // the primary is gone
    }
    const worker = children.find((pid) => environment(pid).includes('\0NODE_UNIQUE_ID='));
    if (worker !== undefined) {
      signal(worker, 'SIGSTOP');
      return worker;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function environment(pid: number): string {
  try {
    return `\0${readFileSync(`/proc/${pid}/environ`, 'utf8')}`;
  } catch {
    return '';
  }
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** Polls `read` until it gives `wanted` (or 60 s pass); resolves with the last value. */
async function eventually<T>(read: () => Promise<T>, wanted: T): Promise<T> {
  const deadline = Date.now() + 60_000;
  let value = await read();
  while (value !== wanted && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    value = await read();
  }
  return value;
}

/**
 * GET over two new connections at once; resolves with the first answer. The
 * cluster may hand one connection to the stopped worker, which never takes
 * it, but not both: a worker gets the next one only after accepting the last.
 */
async function metricsOnNewConnections(url: string): Promise<{ status: number; body: string }> {
  const abort = new AbortController();
  const once = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      get(url, { agent: false, signal: abort.signal }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      }).on('error', reject);
    });
  try {
    return await Promise.any([once(), once()]);
  } finally {
    abort.abort();
  }
}
