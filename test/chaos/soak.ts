/**
 * `npm run soak` (issue 12, item 3): Postern on the chaos rig's own
 * PostgreSQL and Redis, first driven flat out to measure its peak, then held
 * at a share of that peak for minutes with mixed traffic: passkey sign-ins,
 * sign-ups by email code and passkey, refresh-token rotations and
 * self-service reads. Each minute it records flows, errors, p99 latency,
 * Postern's RSS, Redis's memory and its keys by family, with how many never
 * expire; at the end, the slopes. Exits 1 when a flow failed.
 *
 *   npm run soak -- [--minutes 10] [--load 0.8] [--peak-seconds 20] [--users 200]
 *
 * A flow starts on a fixed schedule (open loop): a Postern slowing down
 * shows as latency and a growing backlog, not as a lower rate.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { BenchBrowser, observeRequests } from '../bench/bench-browser.ts';
import {
  type BenchUser,
  posternSignIn,
  posternSignUp,
  type RefreshChain,
  refreshOnce,
  UserPool,
} from '../bench/flows.ts';
import { processTree, rssMiB } from '../bench/proc-cpu.ts';
import { SoftAuthenticator } from '../support/soft-authenticator.ts';
import { type ChaosRig, startChaosRig } from './chaos-rig.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    load: { type: 'string', default: '0.8' },
    'peak-seconds': { type: 'string', default: '20' },
    users: { type: 'string', default: '200' },
  },
});
const minutes = Number(values.minutes);
const load = Number(values.load);
const peakSeconds = Number(values['peak-seconds']);

/** Shares of the mix; each scheduled flow draws one. */
const MIX = [
  ['sign-in', 0.6],
  ['refresh', 0.25],
  ['self-service', 0.1],
  ['sign-up', 0.05],
] as const;
type FlowKind = (typeof MIX)[number][0];

/** Refresh chains the refreshes take turns on (one refresh per chain at a time). */
const CHAINS = 8;
/** Flows in flight beyond which the schedule is not kept and the backlog counts. */
const MAX_IN_FLIGHT = 128;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function draw(): FlowKind {
  let point = Math.random();
  for (const [kind, share] of MIX) {
    point -= share;
    if (point < 0) return kind;
  }
  return 'sign-in';
}

function createFlows(rig: ChaosRig) {
  const target = rig.postern.target;
  const users = new UserPool(rig.users);
  const idleChains: RefreshChain[] = [];
  let signUps = 0;
  const signIn = (scope?: string) =>
    users.with((user) => posternSignIn(target, user, scope ? { scope, prompt: 'consent' } : {}));
  const run: Record<FlowKind, () => Promise<unknown>> = {
    'sign-in': () => signIn(),
    'sign-up': () => {
      const user: BenchUser = {
        email: `soak-${process.pid}-${signUps++}@soak.example`,
        authenticator: new SoftAuthenticator(),
      };
      return posternSignUp(target, user, (email) => rig.mail.nextCode(email, 10_000));
    },
    refresh: async () => {
      const chain = idleChains.shift();
      // Every chain busy: this slot signs in instead, as an app with a new user would.
      if (!chain) return signIn();
      try {
        await refreshOnce(target, chain);
      } finally {
        idleChains.push(chain);
      }
    },
    'self-service': async () => {
      const tokens = await signIn();
      const api = new BenchBrowser({ connectHost: target.connectHost, agent: target.rpAgent });
      const answer = await api.send(new URL(`${target.issuer}/api/self`), {
        headers: { authorization: `Bearer ${tokens.access_token}`, accept: 'application/json' },
      });
      if (answer.status !== 200) throw new Error(`GET /api/self: expected 200, got ${answer.status}`);
    },
  };
  const startChains = async () => {
    for (let i = 0; i < CHAINS; i++) {
      const tokens = await signIn('openid email offline_access');
      if (!tokens.refresh_token) throw new Error('no refresh token for offline_access');
      idleChains.push({ refreshToken: tokens.refresh_token });
    }
  };
  return { run, startChains };
}

interface Minute {
  flows: number;
  failed: number;
  p99Ms: number;
  rssMiB: number;
  redisMiB: number;
  keys: Map<string, { count: number; persistent: number }>;
}

/** A Redis key's family: `oidc:{Model}` or its index, or the first segment after the prefix. */
function familyOf(key: string, prefix: string): string {
  const parts = key.slice(prefix.length).split(':');
  if (parts[0] === 'oidc' && parts.length > 3) return `oidc:${parts[2]}`;
  if (parts[0] === 'ratelimit') return `ratelimit:${parts[1]}`;
  return parts[0] ?? key;
}

async function redisKeys(redis: Redis, prefix: string): Promise<Minute['keys']> {
  const families: Minute['keys'] = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    const ttls = await Promise.all(keys.map((key) => redis.pttl(key)));
    keys.forEach((key, index) => {
      const family = familyOf(key, prefix);
      const entry = families.get(family) ?? { count: 0, persistent: 0 };
      entry.count += 1;
      if (ttls[index] === -1) entry.persistent += 1;
      families.set(family, entry);
    });
  } while (cursor !== '0');
  return families;
}

const percentile = (sorted: number[], share: number) =>
  sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))] as number);

/** Least-squares slope of `ys` per step. */
function slope(ys: number[]): number {
  const n = ys.length;
  if (n < 2) return 0;
  const meanX = (n - 1) / 2;
  const meanY = ys.reduce((sum, y) => sum + y, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return num / den;
}

const rig = await startChaosRig({ users: Number(values.users) });
const redis = new Redis(rig.redis.url, { maxRetriesPerRequest: 1 });
const prefix = 'postern:';
let failures = 0;
try {
  const flows = createFlows(rig);
  await flows.startChains();
  const latencies: number[] = [];
  observeRequests((record) => latencies.push(record.durationMs));
  const errors = new Map<string, number>();
  let done = 0;
  let failed = 0;
  let inFlight = 0;
  let backlog = 0;
  const start = (kind: FlowKind) => {
    inFlight += 1;
    return flows.run[kind]()
      .then(
        () => {
          done += 1;
        },
        (error: unknown) => {
          failed += 1;
          const message = `${kind}: ${String((error as Error).message).slice(0, 160)}`;
          errors.set(message, (errors.get(message) ?? 0) + 1);
        },
      )
      .finally(() => {
        inFlight -= 1;
      });
  };

  // The peak: closed loops, as many as keep the server busy.
  const peakEnd = performance.now() + peakSeconds * 1000;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < peakEnd) await start(draw());
    }),
  );
  const peak = done / peakSeconds;
  const rate = peak * load;
  console.log(
    `peak: ${peak.toFixed(1)} flows/s (${failed} failed); soaking at ${rate.toFixed(1)} flows/s (${load * 100}%) for ${minutes} min`,
  );
  done = 0;
  failed = 0;
  errors.clear();

  const samples: Minute[] = [];
  const interval = 1000 / rate;
  const soakStart = performance.now();
  let nextAt = soakStart;
  const pending = new Set<Promise<void>>();
  for (let minute = 1; minute <= minutes; minute++) {
    const minuteEnd = soakStart + minute * 60_000;
    latencies.length = 0;
    const [doneBefore, failedBefore] = [done, failed];
    while (performance.now() < minuteEnd) {
      if (inFlight < MAX_IN_FLIGHT) {
        const flow = start(draw());
        pending.add(flow);
        void flow.finally(() => pending.delete(flow));
      } else backlog += 1;
      nextAt += interval;
      await sleep(Math.max(0, nextAt - performance.now()));
    }
    const sorted = latencies.toSorted((a, b) => a - b);
    const memory = await redis.info('memory');
    const sample: Minute = {
      flows: done - doneBefore,
      failed: failed - failedBefore,
      p99Ms: Math.round(percentile(sorted, 0.99)),
      rssMiB: processTree(rig.postern.pid).reduce((sum, pid) => sum + rssMiB(pid), 0),
      redisMiB: Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? 0) / 2 ** 20,
      keys: await redisKeys(redis, prefix),
    };
    samples.push(sample);
    // Sampling took time: start the next minute on schedule from now, not in a burst.
    nextAt = Math.max(nextAt, performance.now());
    const keyCount = [...sample.keys.values()].reduce((sum, entry) => sum + entry.count, 0);
    console.log(
      `minute ${minute}: ${sample.flows} flows, ${sample.failed} failed, request p99 ${sample.p99Ms} ms, ` +
        `RSS ${sample.rssMiB.toFixed(1)} MiB, Redis ${sample.redisMiB.toFixed(1)} MiB, ${keyCount} keys, backlog ${backlog}`,
    );
  }
  await Promise.all(pending);
  observeRequests(undefined);

  // Minute 1 warms up (caches, the JIT, the first sessions): slopes from minute 2.
  const steady = samples.slice(1);
  console.log(`\nRSS slope: ${slope(steady.map((s) => s.rssMiB)).toFixed(2)} MiB/min`);
  console.log(`Redis memory slope: ${slope(steady.map((s) => s.redisMiB)).toFixed(2)} MiB/min`);
  console.log('Redis keys by family (first minute → last; never expiring in brackets):');
  const first = samples[0]?.keys ?? new Map();
  const last = samples.at(-1)?.keys ?? new Map();
  for (const family of [...new Set([...first.keys(), ...last.keys()])].sort()) {
    const [a, b] = [first.get(family), last.get(family)];
    console.log(
      `  ${family}: ${a?.count ?? 0} [${a?.persistent ?? 0}] → ${b?.count ?? 0} [${b?.persistent ?? 0}]`,
    );
  }
  const totalFailed = samples.reduce((sum, s) => sum + s.failed, 0);
  if (totalFailed > 0) {
    failures = totalFailed;
    console.log(`\nFAILED: ${totalFailed} flows`);
    for (const [message, count] of errors) console.log(`  ${count}× ${message}`);
  } else console.log('\nno flow failed');
} finally {
  redis.disconnect();
  await rig.close();
}
process.exitCode = failures > 0 ? 1 : 0;
