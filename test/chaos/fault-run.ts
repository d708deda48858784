/**
 * One fault under load, measured: mixed traffic runs (passkey sign-ins,
 * sign-ups by email code and passkey, rotating refresh tokens), then a store
 * is killed, stalled or slowed, then restored, and the traffic goes on.
 *
 * Every request is recorded (bench-browser's observer) and judged by when it
 * was sent: before the fault, while it lasts (those in flight when it starts
 * included), or after the store returned. The run's verdicts are what
 * DESIGN.md promises:
 * - while the store is broken every answer comes within 1 s and is a success,
 *   an ordinary refusal, or a clean 503 (JSON or a page, no stack); never a
 *   500, a dropped connection or a hang;
 * - `/readyz` answers 503 naming the store;
 * - within 5 s of the store's return every flow succeeds again, without a restart;
 * - nothing is half written (checked by `checkIntegrity`).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { observeRequests, type RequestRecord } from '../bench/bench-browser.ts';
import { type BenchUser, posternSignIn, posternSignUp, refreshOnce, UserPool } from '../bench/flows.ts';
import { SoftAuthenticator } from '../support/soft-authenticator.ts';
import type { ChaosRig } from './chaos-rig.ts';

export const FAULTS = [
  'redis-kill',
  'redis-stall',
  'redis-slow',
  'postgres-kill',
  'postgres-stall',
  'postgres-slow',
] as const;
export type Fault = (typeof FAULTS)[number];

/** How late every byte arrives in a `-slow` fault: well past any store timeout, short of a stall. */
export const SLOW_DELAY_MS = 2_000;
/** The promise: an answer within this while a store is broken. */
export const ANSWER_WITHIN_MS = 1_000;
/** The promise: flows succeed again this soon after the store returns. */
export const RECOVER_WITHIN_MS = 5_000;

export interface FaultRunOptions {
  fault: Fault;
  /** Traffic before the fault, during it, and after the store returned. */
  beforeMs: number;
  faultMs: number;
  afterMs: number;
  /** Concurrent flows of each kind. */
  signIns: number;
  signUps: number;
  refreshes: number;
}

export interface FaultReport {
  fault: Fault;
  /** Requests sent before, during and after the fault, by status (0: no answer). */
  statuses: { before: Record<number, number>; during: Record<number, number>; after: Record<number, number> };
  /** The slowest answer to a request sent during the fault, or in flight when it began (from the fault's start). */
  slowestDuringMs: number;
  /** Requests that broke the promise while the store was broken: a 500, no answer, a 503 with a stack, over 1 s. */
  badAnswers: RequestRecord[];
  /** What /readyz said while the store was broken, e.g. `redis`; and how soon after the fault it first did. */
  readyzNamed: string[];
  readyzFirstMs: number | undefined;
  /** From the store's return to the end of the last failed request; 0 when none failed after it. */
  recoveryMs: number;
  /** Flows begun after the store returned and recovery ended, and how many failed. */
  flowsAfter: number;
  failedAfter: number;
  /** Refresh tokens spent by a refresh that returned no successor (the chain can no longer refresh). */
  brokenRefreshChains: number;
  /**
   * Refresh chains that ended because a rotation's answer was lost (the
   * refresh went unanswered, and its retry with the old token was a replay).
   * Not a broken promise: the rotation is one atomic statement, but no
   * server can know whether a commit whose acknowledgement it never received
   * happened, nor tell the app's retry from a thief's replay.
   */
  lostRefreshAnswers: number;
  /** Per seeded user: the counter of their last sign-in Postern accepted (device-bound passkeys count). */
  acceptedCounters: Map<string, number>;
  flowErrors: string[];
}

interface Clock {
  faultAt: number;
  restoredAt: number;
}

function byStatus(records: RequestRecord[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const record of records) counts[record.status] = (counts[record.status] ?? 0) + 1;
  return counts;
}

/** A 503 that is Postern's own: JSON or the error page, no stack trace. */
function clean503(record: RequestRecord): boolean {
  return (
    record.status === 503 &&
    /^(application\/json|text\/html)/.test(record.contentType) &&
    !/\n\s+at /.test(record.failure)
  );
}

async function breakStore(rig: ChaosRig, fault: Fault): Promise<void> {
  switch (fault) {
    case 'redis-kill':
      return rig.redis.kill();
    case 'redis-stall':
      return rig.redisProxy.setMode({ kind: 'stall' });
    case 'redis-slow':
      return rig.redisProxy.setMode({ kind: 'delay', delayMs: SLOW_DELAY_MS });
    case 'postgres-kill':
      return rig.postgres.crash();
    case 'postgres-stall':
      return rig.postgresProxy.setMode({ kind: 'stall' });
    case 'postgres-slow':
      return rig.postgresProxy.setMode({ kind: 'delay', delayMs: SLOW_DELAY_MS });
  }
}

async function restoreStore(rig: ChaosRig, fault: Fault): Promise<void> {
  if (fault === 'redis-kill') return rig.redis.start();
  if (fault === 'postgres-kill') return rig.postgres.start();
  (fault.startsWith('redis') ? rig.redisProxy : rig.postgresProxy).setMode({ kind: 'pass' });
}

/** Polls /readyz every 100 ms; returns what it saw, with times. */
function pollReadiness(rig: ChaosRig) {
  const seen: Array<{ at: number; unavailable: string[] }> = [];
  let running = true;
  const url = `http://${rig.postern.target.connectHost}:${new URL(rig.postern.target.origin).port}/readyz`;
  const done = (async () => {
    while (running) {
      const at = performance.now();
      const answer = await fetch(url, { signal: AbortSignal.timeout(3_000) })
        .then(async (response) => (response.ok ? [] : ((await response.json()).unavailable as string[])))
        .catch(() => ['(no answer)']);
      seen.push({ at, unavailable: answer ?? [] });
      await sleep(100);
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await done;
    },
  };
}

interface LoadState {
  running: boolean;
  flows: Array<{ startedAt: number; ok: boolean }>;
  errors: Set<string>;
  brokenChains: number;
  lostAnswers: number;
  acceptedCounters: Map<string, number>;
}

/** Numbers sign-up addresses across every run of this process: each address signs up once. */
let signUpCounter = 0;

/** Closed loops of each kind of flow until `state.running` is false. */
function driveLoad(rig: ChaosRig, options: FaultRunOptions, chains: string[], state: LoadState) {
  const users = new UserPool(rig.users);
  const target = rig.postern.target;
  const loop = async (flow: () => Promise<void>) => {
    while (state.running) {
      const startedAt = performance.now();
      try {
        await flow();
        state.flows.push({ startedAt, ok: true });
      } catch (error) {
        state.flows.push({ startedAt, ok: false });
        if (state.errors.size < 20) state.errors.add(String((error as Error).message).slice(0, 200));
        // A failing store answers fast: do not spin.
        await sleep(20);
      }
    }
  };
  const signIn = () =>
    users.with(async (user) => {
      await posternSignIn(
        target,
        user,
        {},
        {
          onStep: async (step) => {
            if (step === 'POST …/passkey/verify')
              state.acceptedCounters.set(user.email, user.authenticator.credentials[0]?.signCount ?? 0);
          },
        },
      );
    });
  const signUp = async () => {
    const user: BenchUser = {
      email: `chaos-${process.pid}-${signUpCounter++}@chaos.example`,
      authenticator: new SoftAuthenticator(),
    };
    await posternSignUp(target, user, (email) => rig.mail.nextCode(email, 5_000));
  };
  // Per chain: whether its last refresh went unanswered (a 5xx, or no answer). The
  // rotation may have committed with its answer lost; the app's retry with the old
  // token is then a replay by RFC 9700's rule, which no server can tell from theft.
  const unanswered = chains.map(() => false);
  const refresh = (slot: number) => async () => {
    const chain = { refreshToken: chains[slot] as string };
    try {
      await refreshOnce(target, chain);
      unanswered[slot] = false;
    } catch (error) {
      const message = String((error as Error).message);
      if (/got 400 .*invalid_grant/.test(message)) {
        const lost = unanswered[slot];
        unanswered[slot] = false;
        chain.refreshToken = await newChain(rig, users);
        // After an unanswered refresh: a lost answer, counted apart; the app signed in
        // again, as an app does. After an answer the app did get: its token was spent
        // without the successor reaching it, a broken promise.
        if (lost) {
          state.lostAnswers += 1;
          return;
        }
        state.brokenChains += 1;
        throw error;
      }
      unanswered[slot] = !/got 4\d\d/.test(message);
      throw error;
    } finally {
      chains[slot] = chain.refreshToken;
    }
  };
  return Promise.all([
    ...Array.from({ length: options.signIns }, () => loop(signIn)),
    ...Array.from({ length: options.signUps }, () => loop(signUp)),
    ...Array.from({ length: options.refreshes }, (_, slot) => loop(refresh(slot))),
  ]);
}

/** A signed-in app's refresh token (offline_access, consented). */
async function newChain(rig: ChaosRig, users: UserPool): Promise<string> {
  const tokens = await users.with((user) =>
    posternSignIn(rig.postern.target, user, { scope: 'openid email offline_access', prompt: 'consent' }),
  );
  if (!tokens.refresh_token) throw new Error('no refresh token for offline_access');
  return tokens.refresh_token;
}

export async function runFault(rig: ChaosRig, options: FaultRunOptions): Promise<FaultReport> {
  const records: RequestRecord[] = [];
  const chainUsers = new UserPool(rig.users);
  const chains = await Promise.all(
    Array.from({ length: options.refreshes }, () => newChain(rig, chainUsers)),
  );
  observeRequests((record) => records.push(record));
  const state: LoadState = {
    running: true,
    flows: [],
    errors: new Set(),
    brokenChains: 0,
    lostAnswers: 0,
    acceptedCounters: new Map(),
  };
  const readiness = pollReadiness(rig);
  const load = driveLoad(rig, options, chains, state);
  const clock: Clock = { faultAt: 0, restoredAt: 0 };
  try {
    await sleep(options.beforeMs);
    clock.faultAt = performance.now();
    await breakStore(rig, options.fault);
    await sleep(options.faultMs);
    await restoreStore(rig, options.fault);
    clock.restoredAt = performance.now();
    await sleep(options.afterMs);
  } finally {
    state.running = false;
    await load;
    await readiness.stop();
    observeRequests(undefined);
  }
  return report(options, records, readiness.seen, state, clock);
}

function report(
  options: FaultRunOptions,
  records: RequestRecord[],
  readiness: Array<{ at: number; unavailable: string[] }>,
  state: LoadState,
  { faultAt, restoredAt }: Clock,
): FaultReport {
  const ended = (record: RequestRecord) => record.startedAt + record.durationMs;
  const before = records.filter((record) => ended(record) < faultAt);
  const during = records.filter((record) => ended(record) >= faultAt && record.startedAt < restoredAt);
  const after = records.filter((record) => record.startedAt >= restoredAt);
  const answeredIn = (record: RequestRecord) => ended(record) - Math.max(record.startedAt, faultAt);
  const failed = (record: RequestRecord) => record.status === 0 || record.status >= 500;
  const badAnswers = during.filter(
    (record) =>
      record.status === 0 ||
      (record.status >= 500 && !clean503(record)) ||
      answeredIn(record) > ANSWER_WITHIN_MS,
  );
  const lastFailure = Math.max(restoredAt, ...after.filter(failed).map(ended));
  const recoveryEnd = lastFailure;
  const named = new Set<string>();
  let readyzFirstMs: number | undefined;
  for (const probe of readiness) {
    if (probe.at < faultAt || probe.at >= restoredAt) continue;
    for (const name of probe.unavailable) named.add(name);
    if (probe.unavailable.length > 0 && readyzFirstMs === undefined) readyzFirstMs = probe.at - faultAt;
  }
  // Flows begun after recovery: one begun during the fault may fail on a request it sent then.
  const flowsAfter = state.flows.filter((flow) => flow.startedAt > recoveryEnd + 1);
  return {
    fault: options.fault,
    statuses: { before: byStatus(before), during: byStatus(during), after: byStatus(after) },
    slowestDuringMs: Math.round(Math.max(0, ...during.map(answeredIn))),
    badAnswers,
    readyzNamed: [...named],
    readyzFirstMs: readyzFirstMs === undefined ? undefined : Math.round(readyzFirstMs),
    recoveryMs: Math.round(lastFailure - restoredAt),
    flowsAfter: flowsAfter.length,
    failedAfter: flowsAfter.filter((flow) => !flow.ok).length,
    brokenRefreshChains: state.brokenChains,
    lostRefreshAnswers: state.lostAnswers,
    acceptedCounters: state.acceptedCounters,
    flowErrors: [...state.errors],
  };
}
