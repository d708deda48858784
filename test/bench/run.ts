/**
 * `npm run bench`: Postern's passkey sign-in benchmark (the performance
 * issue; budget in DESIGN.md, "Performance budget"). It reports and exits 0
 * whatever the figures are; only an error that prevents measuring exits 1.
 *
 *   npm run bench                                  # the default run (about 4 minutes)
 *   npm run bench -- --duration 3 --users 50       # a quick check
 *   npm run bench -- --workers 2 --scale --rss     # the further scenarios (or --all)
 *   npm run bench -- --embedded                    # on the embedded default instead
 *
 * Flags:
 *   --users N          users with a passkey, signed in in turn (default 200)
 *   --duration S       measured seconds per side and scenario (default 10)
 *   --warmup S         unmeasured seconds per server before measuring (default 8: V8 keeps optimising for a while)
 *   --concurrency L    sign-in concurrencies, comma-separated (default 1,8,32)
 *   --slices N         interleaved slices per scenario: A B A B … (default 2)
 *   --workers N        also compare `serve --workers N` with one worker (not with --embedded)
 *   --scale            also compare sign-ins among 1,000,000 stored passkeys with 1,000 (a second
 *                      database and Postern, interleaved; not with --embedded)
 *   --rss              also report Postern's RSS with 10,000 live interactions
 *   --all              --workers 2 --scale --rss
 *   --embedded         PGlite and the in-process store (no DATABASE_URL/REDIS_URL); the bare provider in memory
 *   --cpu-prof         run Postern under `node --cpu-prof` and summarise the profile's self time
 *   --no-grants        skip the refresh_token and client_credentials scenarios
 *   --no-trace         skip the per-hop store trace of one sign-in
 *
 * What happens: a fresh database postern_bench_<random> on
 * postgres://postgres@127.0.0.1:5432 (BENCH_POSTGRES_URL), `postern migrate`,
 * users and passkeys written into it, Redis on redis://127.0.0.1:6379
 * (BENCH_REDIS_URL) under a unique key prefix; then `postern serve` (log level
 * warn) and bare-provider.ts as child processes. Every scenario runs the
 * same closed-loop flows (flows.ts) against Postern and the bare provider in
 * interleaved slices (scenarios.ts): sign-ins at each concurrency, then
 * refresh_token and client_credentials grants. At the end the database is
 * dropped and the prefix's keys deleted, also after a failure or Ctrl-C.
 *
 * Figures (per flow unless said): flows/s and p50/p99 latency of whole
 * flows; server CPU from /proc/<pid>/stat of the server's process tree
 * (workers included); PostgreSQL CPU of the bench database's backends and
 * the server's auxiliary processes, Redis CPU of redis-server; the bench's
 * own CPU (it shares the cores); store round trips as the requests the
 * server's sockets sent to PostgreSQL and Redis (store-round-trips.ts), and
 * beside them PostgreSQL transactions of the bench database
 * (pg_stat_database) and Redis calls (INFO commandstats, including commands
 * run inside scripts). The trace (trace-sign-in.ts) then lists the Redis
 * commands and SQL statements of one sign-in hop by hop.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { type MailSink, startMailSink } from '../support/mail-sink.ts';
import {
  alterDatabase,
  type BenchDatabase,
  benchKeyPrefix,
  callsBetween,
  createBenchDatabase,
  deleteBenchKeys,
  REDIS_URL,
  StoreCounters,
  totalCalls,
} from './bench-stores.ts';
import { summariseProfiles, type Window } from './cpu-profile.ts';
import {
  authorizeOnly,
  type BenchUser,
  bareSignIn,
  clientCredentials,
  posternSignIn,
  type RefreshChain,
  refreshOnce,
  type Target,
  UserPool,
} from './flows.ts';
import { cpuBetween, machineCpu, processTree, rssMiB, snapshotCpu } from './proc-cpu.ts';
import { flowsPerSecond, formatProfiles, formatScenario, formatTargets, formatTrace } from './report.ts';
import { runScenario, type ScenarioResult, type Side, warmUp } from './scenarios.ts';
import {
  fillPasskeys,
  insertUsers,
  type MintedUser,
  mintUsers,
  signUpUsersThroughApi,
} from './seed-users.ts';
import {
  migrate,
  POOL_ID,
  type PosternSetup,
  type ServerUnderTest,
  startBareProvider,
  startPostern,
  writePosternConfig,
} from './servers.ts';
import { targetsOf } from './targets.ts';
import { postgresLogPath, type TracedStep, traceSignIn } from './trace-sign-in.ts';

// ------------------------------------------------------------------ flags

function parseFlags() {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '200' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '8' },
      concurrency: { type: 'string', default: '1,8,32' },
      slices: { type: 'string', default: '2' },
      workers: { type: 'string' },
      scale: { type: 'boolean', default: false },
      rss: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      embedded: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'no-grants': { type: 'boolean', default: false },
      'no-trace': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const positive = (name: string, value: string | undefined) => {
    const number = Number(value);
    if (!Number.isFinite(number) || number <= 0)
      throw new Error(`--${name} expects a positive number, got ${value}`);
    return number;
  };
  const flags = {
    users: Math.round(positive('users', values.users)),
    durationS: positive('duration', values.duration),
    warmupS: positive('warmup', values.warmup),
    concurrencies: (values.concurrency ?? '')
      .split(',')
      .map((item) => Math.round(positive('concurrency', item))),
    slices: Math.round(positive('slices', values.slices)),
    workers:
      values.workers === undefined ? (values.all ? 2 : 1) : Math.round(positive('workers', values.workers)),
    scale: values.scale || values.all,
    rss: values.rss || values.all,
    embedded: values.embedded,
    cpuProf: values['cpu-prof'],
    grants: !values['no-grants'],
    trace: !values['no-trace'],
  };
  if (flags.users < Math.max(...flags.concurrencies, flags.workers > 1 ? 32 : 0)) {
    // Each flow checks a user out (their passkey's counter), so fewer users than flows in flight means waiting.
    console.warn(`--users ${flags.users} is below the highest concurrency: flows will wait for a free user`);
  }
  if (flags.embedded && flags.workers > 1)
    throw new Error('--workers needs PostgreSQL and Redis: not with --embedded');
  return flags;
}

type Flags = ReturnType<typeof parseFlags>;

// --------------------------------------------------------------- cleanup

const cleanups: Array<() => Promise<unknown>> = [];
let cleaning: Promise<void> | undefined;
const onCleanup = (cleanup: () => Promise<unknown>) => cleanups.push(cleanup);

function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) =>
        console.error(`cleanup: ${(error as Error).message ?? error}`),
      );
    }
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the servers, dropping the bench database, deleting the bench keys…`);
    cleanUp().finally(() => process.exit(130));
  });
}

// --------------------------------------------------------------- helpers

const print = (text: string) => console.log(text);

function describeMachine(flags: Flags): string {
  const git = (() => {
    try {
      return execFileSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  const oidcProvider = (() => {
    try {
      return execFileSync(process.execPath, ['-p', "require('oidc-provider/package.json').version"], {
        encoding: 'utf8',
      }).trim();
    } catch {
      return 'unknown';
    }
  })();
  return [
    `Postern bench — ${git}, node ${process.version}, oidc-provider ${oidcProvider}`,
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} (shared with whatever else runs here)`,
    `mode: ${flags.embedded ? 'embedded (PGlite, in-process store)' : 'PostgreSQL + Redis'}; ${flags.users} users; ` +
      `${flags.durationS} s per side per scenario in ${flags.slices} slices; warm-up ${flags.warmupS} s`,
  ].join('\n');
}

/** How busy the stores and the machine are without the bench: the noise floor. */
async function measureBackground(counters: StoreCounters, ms: number): Promise<string> {
  const postgresPids = await counters.postgresPids();
  const before = {
    postgres: snapshotCpu(postgresPids),
    redis: snapshotCpu(counters.redisPids()),
    calls: await counters.redisCalls(),
    machine: machineCpu(),
  };
  await sleep(ms);
  const calls = totalCalls(callsBetween(before.calls, await counters.redisCalls()));
  const machine = machineCpu();
  const perSecond = (value: number) => ((value * 1000) / ms).toFixed(1);
  const busy = (machine.busyMs - before.machine.busyMs) / (machine.totalMs - before.machine.totalMs);
  return (
    `background without the bench (${ms / 1000} s): redis ${perSecond(calls)} calls/s, ` +
    `${perSecond(cpuBetween(before.redis, snapshotCpu(counters.redisPids())))} ms CPU/s; ` +
    `postgres (aux + bench db) ${perSecond(cpuBetween(before.postgres, snapshotCpu(postgresPids)))} ms CPU/s; ` +
    `machine ${Math.round(busy * 100)}% busy`
  );
}

/** Runs `count` authorization requests, `concurrency` at a time; resolves with the errors. */
async function authorizeMany(target: Target, count: number, concurrency: number): Promise<number> {
  let remaining = count;
  let errors = 0;
  const worker = async () => {
    while (remaining > 0) {
      remaining -= 1;
      await authorizeOnly(target).catch(() => {
        errors += 1;
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return errors;
}

/** What a server logged (at warn and above for Postern): a log line per request would skew the figures. */
function logSummary(label: string, server: ServerUnderTest): string {
  const lines = server.output().split('\n').filter(Boolean);
  const first = lines.slice(0, 3).map((line) => `\n    ${line.slice(0, 300)}`);
  return `\n${label} wrote ${lines.length} log line(s) during the run${lines.length > 0 ? `, the first:${first.join('')}` : ''}`;
}

const treeRss = (pid: number) => processTree(pid).reduce((total, member) => total + rssMiB(member), 0);

// ------------------------------------------------------------------ main

async function main() {
  const flags = parseFlags();
  const durationMs = flags.durationS * 1000;
  const warmupMs = flags.warmupS * 1000;
  const { embedded } = flags;
  print(describeMachine(flags));

  // Stores and configuration.
  const prefix = benchKeyPrefix();
  let database: BenchDatabase | undefined;
  let mail: MailSink | undefined;
  let dataDir: string | undefined;
  if (embedded) {
    const dir = await mkdtemp(join(tmpdir(), 'postern-bench-data-'));
    dataDir = dir;
    onCleanup(() => rm(dir, { recursive: true, force: true }));
    const sink = await startMailSink();
    mail = sink;
    onCleanup(() => sink.close());
  } else {
    const created = await createBenchDatabase();
    database = created;
    onCleanup(() => created.drop());
    onCleanup(() => deleteBenchKeys(prefix));
    print(`database ${created.name}, redis key prefix ${prefix}`);
  }
  const setup: PosternSetup = database
    ? { databaseUrl: database.url, redisUrl: REDIS_URL, redisKeyPrefix: prefix }
    : { redisKeyPrefix: prefix, dataDir, smtpUrl: mail?.url };
  const config = await writePosternConfig(setup);
  onCleanup(() => config.remove());

  let users: BenchUser[] = [];
  let minted: MintedUser[] = [];
  if (database) {
    await migrate(config, setup);
    const started = Date.now();
    minted = mintUsers(flags.users);
    await insertUsers(await database.open(), POOL_ID, minted);
    users = minted.map((one) => one.user);
    print(`seeded ${users.length} users with a passkey each into PostgreSQL in ${Date.now() - started} ms`);
  }
  const counters = await StoreCounters.open({ database: database?.name, redis: !embedded });
  onCleanup(() => counters.close());

  // The servers.
  const cpuProfDir = flags.cpuProf ? await mkdtemp(join(tmpdir(), 'postern-cpu-prof-')) : undefined;
  const postern = await startPostern(config, setup, { cpuProfDir });
  onCleanup(() => postern.stop());
  const bare = await startBareProvider({
    redisUrl: embedded ? undefined : REDIS_URL,
    redisKeyPrefix: prefix,
    accounts: flags.users,
  });
  onCleanup(() => bare.stop());
  print(
    `postern pid ${postern.pid} at ${postern.target.issuer}; bare oidc-provider pid ${bare.pid} at ${bare.target.issuer}`,
  );
  if (mail) {
    const started = Date.now();
    users = await signUpUsersThroughApi(postern.target, mail, { count: flags.users });
    print(`signed up ${users.length} users through the interaction API in ${Date.now() - started} ms`);
  }
  print(await measureBackground(counters, 2000));

  const pool = new UserPool(users);
  const signInSide = (server: ServerUnderTest, label: string): Side => ({
    label,
    pid: server.pid,
    usesPostgres: !embedded,
    flow: () => pool.with((user) => posternSignIn(server.target, user)).then(() => {}),
  });
  const posternSide = signInSide(postern, 'postern passkey');
  const bareSide: Side = {
    label: 'bare auto-login',
    pid: bare.pid,
    usesPostgres: false,
    flow: () => bareSignIn(bare.target).then(() => {}),
  };
  const report = (result: ScenarioResult) => print(formatScenario(result, flags));
  // The profile summary covers the main Postern's sign-in slices only (not its start, nor the grants).
  const signInWindows: Window[] = [];
  const recordSignInSlice = (side: Side, window: Window) => {
    if (side === posternSide) signInWindows.push(window);
  };

  await warmUp([posternSide, bareSide], 8, warmupMs, counters);
  const signIns = new Map<number, ScenarioResult>();
  for (const concurrency of flags.concurrencies) {
    const result = await runScenario(counters, {
      name: 'usernameless passkey sign-in vs bare auto-login (authorize → code → token)',
      concurrency,
      durationMs,
      slices: flags.slices,
      sides: [posternSide, bareSide],
      countXacts: true,
      onSlice: recordSignInSlice,
    });
    signIns.set(concurrency, result);
    report(result);
  }

  // Grants from the relying app's server.
  const grantResults: { refresh?: ScenarioResult; clientCredentials?: ScenarioResult } = {};
  if (flags.grants) {
    const GRANT_CONCURRENCY = 8;
    const offline = { scope: 'openid email offline_access', prompt: 'consent' };
    const chainsOf = async (signIn: () => Promise<{ refresh_token?: string }>) =>
      Promise.all(
        Array.from({ length: GRANT_CONCURRENCY }, async (): Promise<RefreshChain> => {
          const tokens = await signIn();
          if (!tokens.refresh_token)
            throw new Error('a sign-in for offline_access returned no refresh token');
          return { refreshToken: tokens.refresh_token };
        }),
      );
    const posternChains = await chainsOf(() =>
      pool.with((user) => posternSignIn(postern.target, user, offline)),
    );
    const bareChains = await chainsOf(() => bareSignIn(bare.target, offline));
    const refreshSides: Side[] = [
      {
        label: 'postern refresh',
        pid: postern.pid,
        usesPostgres: !embedded,
        flow: (slot) => refreshOnce(postern.target, posternChains[slot] as RefreshChain),
      },
      {
        label: 'bare refresh',
        pid: bare.pid,
        usesPostgres: false,
        flow: (slot) => refreshOnce(bare.target, bareChains[slot] as RefreshChain),
      },
    ];
    await warmUp(refreshSides, GRANT_CONCURRENCY, 1000, counters);
    grantResults.refresh = await runScenario(counters, {
      name: 'refresh_token grant (rotating)',
      concurrency: GRANT_CONCURRENCY,
      durationMs,
      slices: flags.slices,
      sides: refreshSides,
      countXacts: true,
    });
    report(grantResults.refresh);
    const machineSides: Side[] = [
      {
        label: 'postern client_credentials',
        pid: postern.pid,
        usesPostgres: !embedded,
        flow: () => clientCredentials(postern.target),
      },
      {
        label: 'bare client_credentials',
        pid: bare.pid,
        usesPostgres: false,
        flow: () => clientCredentials(bare.target),
      },
    ];
    await warmUp(machineSides, GRANT_CONCURRENCY, 1000, counters);
    grantResults.clientCredentials = await runScenario(counters, {
      name: 'client_credentials grant',
      concurrency: GRANT_CONCURRENCY,
      durationMs,
      slices: flags.slices,
      sides: machineSides,
      countXacts: true,
    });
    report(grantResults.clientCredentials);
  }

  // serve --workers N against one worker.
  const workerResults: ScenarioResult[] = [];
  if (flags.workers > 1 && !embedded) {
    const cluster = await startPostern(config, setup, { workers: flags.workers, cpuProfDir });
    onCleanup(() => cluster.stop());
    const clusterSide = signInSide(cluster, `postern --workers ${flags.workers}`);
    // Fresh processes against one that has run every scenario so far: warm them well (JIT).
    await warmUp([clusterSide], 8, Math.max(warmupMs, 15_000), counters);
    for (const concurrency of [8, 32]) {
      const result = await runScenario(counters, {
        name: `passkey sign-in, serve --workers ${flags.workers} vs one worker`,
        concurrency,
        durationMs,
        slices: flags.slices,
        sides: [clusterSide, { ...posternSide, label: 'postern 1 worker' }],
      });
      workerResults.push(result);
      report(result);
    }
    await cluster.stop();
  }

  // Sign-ins among 1,000,000 stored passkeys against 1,000: a second database
  // with the same users and a million passkeys, its own Postern, interleaved
  // with the first (filled to 1,000) like every other comparison.
  let scaleRatio: number | undefined;
  if (flags.scale && database) {
    const large = await createBenchDatabase();
    onCleanup(() => large.drop());
    counters.watchDatabase(large.name);
    const largeSetup: PosternSetup = { ...setup, databaseUrl: large.url, redisKeyPrefix: `${prefix}scale:` };
    const largeConfig = await writePosternConfig(largeSetup);
    onCleanup(() => largeConfig.remove());
    await migrate(largeConfig, largeSetup);
    const largeClient = await large.open();
    await insertUsers(largeClient, POOL_ID, minted);
    const fill = async (client: pg.Client, total: number, name: string) => {
      const filled = await fillPasskeys(client, {
        poolId: POOL_ID,
        total,
        onProgress: (stored) => {
          if (process.stderr.isTTY)
            process.stderr.write(`\r  ${name}: ${stored.toLocaleString('en')} passkeys   `);
        },
      });
      if (filled.added > 0 && process.stderr.isTTY) process.stderr.write('\n');
      print(
        `scale: ${name} holds ${total.toLocaleString('en')} passkeys (${filled.added.toLocaleString('en')} fake ones added in ${(filled.ms / 1000).toFixed(1)} s)`,
      );
    };
    print('');
    await fill(await database.open(), 1_000, database.name);
    await fill(largeClient, 1_000_000, large.name);
    const largePostern = await startPostern(largeConfig, largeSetup);
    onCleanup(() => largePostern.stop());
    const largeSide = signInSide(largePostern, 'postern, 1,000,000 passkeys');
    // A fresh process against one that has run every scenario so far: warm it well (JIT), or the ratio measures that.
    await warmUp([largeSide], 8, Math.max(warmupMs, 15_000), counters);
    const result = await runScenario(counters, {
      name: 'passkey sign-in among 1,000,000 stored passkeys vs 1,000',
      concurrency: 8,
      durationMs,
      slices: flags.slices,
      sides: [largeSide, { ...posternSide, label: 'postern, 1,000 passkeys' }],
    });
    report(result);
    const [many, few] = result.sides;
    if (many && few) scaleRatio = flowsPerSecond(many) / flowsPerSecond(few);
    await largePostern.stop();
  }

  // RSS with 10,000 live interactions.
  let rss: { before: number; after: number; errors: number } | undefined;
  if (flags.rss) {
    const LIVE = 10_000;
    const before = treeRss(postern.pid);
    const errors = await authorizeMany(postern.target, LIVE, 32);
    await sleep(2000);
    rss = { before, after: treeRss(postern.pid), errors };
    print(
      `\n== RSS with ${LIVE.toLocaleString('en')} live interactions: ${rss.before.toFixed(0)} MiB before, ` +
        `${rss.after.toFixed(0)} MiB after (${errors} failed authorizations; interactions live in ${embedded ? 'the process' : 'Redis'})`,
    );
  }

  await postern.stop();
  await bare.stop();
  print(logSummary('postern', postern));
  print(logSummary('bare oidc-provider', bare));
  if (cpuProfDir) {
    const summaries = summariseProfiles(cpuProfDir, { windows: signInWindows });
    const profiledFlows = [...signIns.values()].reduce(
      (total, result) => total + (result.sides[0]?.flows ?? 0),
      0,
    );
    // The windows are the main Postern's sign-in slices: its profile holds all of those flows.
    print(formatProfiles(cpuProfDir, summaries, profiledFlows));
    print(`  profiles kept in ${cpuProfDir} (open them in Chrome DevTools → Performance, or speedscope)`);
  }

  // One sign-in, hop by hop.
  let trace: TracedStep[] | undefined;
  const logPath = postgresLogPath();
  if (flags.trace && database && !logPath)
    print('\ntrace skipped: no PostgreSQL server log found (set BENCH_POSTGRES_LOG)');
  if (flags.trace && database && logPath) {
    await alterDatabase(database.name, 'log_statement', 'all');
    const tracer = await startPostern(config, setup);
    onCleanup(() => tracer.stop());
    try {
      await pool.with((user) => posternSignIn(tracer.target, user));
      trace = await pool.with((user) =>
        traceSignIn({
          target: tracer.target,
          user,
          redisUrl: REDIS_URL,
          redisKeyPrefix: prefix,
          database: database.name,
          logPath,
        }),
      );
      print(formatTrace(trace));
    } finally {
      await tracer.stop();
      await alterDatabase(database.name, 'log_statement', undefined);
    }
  }

  print(formatTargets(targetsOf(flags, { signIns, grantResults, workerResults, scaleRatio, rss, trace })));
}

try {
  await main();
  await cleanUp();
  // Keep-alive agents and the like must not hold the process open.
  process.exit(0);
} catch (error) {
  console.error(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await cleanUp();
  process.exit(1);
}
