/**
 * Runs one scenario: the same closed-loop load against each side (Postern,
 * the bare provider, Postern with more workers, …) in interleaved slices
 * (A B A B …), so whatever else the shared machine does hits every side
 * alike. Around each slice it reads, from outside: the side's process tree
 * CPU, the stores' CPU, the requests it sent to each store (on the wire),
 * Redis's command counts, the bench's own CPU (the
 * load generator competes for the same cores) and the machine's busy time.
 * PostgreSQL transactions are counted around the whole scenario for the one
 * side that uses the bench database (its counts arrive late; see bench-stores.ts).
 */
import { callsBetween, type StoreCounters } from './bench-stores.ts';
import { monotonicUs, type Window } from './cpu-profile.ts';
import { runClosedLoop } from './load.ts';
import { cpuBetween, machineCpu, processTree, rssMiB, snapshotCpu } from './proc-cpu.ts';
import { segmentsBetween, snapshotSegments } from './store-round-trips.ts';

export interface Side {
  label: string;
  /** The root process of the server under test (its workers are found under it). */
  pid: number;
  flow(slot: number): Promise<void>;
  /** Whether its flows use the bench database, so its slices delay the next PostgreSQL reading. */
  usesPostgres: boolean;
}

export interface SideResult {
  label: string;
  flows: number;
  errors: number;
  latenciesMs: number[];
  elapsedMs: number;
  errorSamples: string[];
  serverCpuMs: number;
  postgresCpuMs: number;
  redisCpuMs: number;
  benchCpuMs: number;
  /** The machine's busy share during this side's slices (all cores: 1 = every core busy). */
  machineBusy: number;
  redisCalls: Map<string, number>;
  /** Requests the server sent to each store (TCP data segments; store-round-trips.ts). */
  postgresRoundTrips: number;
  redisRoundTrips: number;
  /** The server's resident memory after its last slice (all its processes), MiB. */
  rssMiB: number;
  /** PostgreSQL transactions of the bench database, when counted. */
  xacts?: number;
}

export interface ScenarioResult {
  name: string;
  concurrency: number;
  sides: SideResult[];
}

export interface ScenarioOptions {
  name: string;
  concurrency: number;
  /** Measured time per side, split into `slices` interleaved slices. */
  durationMs: number;
  slices: number;
  sides: Side[];
  /** Count the bench database's transactions for the one side with `usesPostgres`. */
  countXacts?: boolean;
  /** (Optional) Told when each slice of a side ran, on the monotonic clock (for the CPU profile). */
  onSlice?: (side: Side, window: Window) => void;
}

function emptyResult(label: string): SideResult {
  return {
    label,
    flows: 0,
    errors: 0,
    latenciesMs: [],
    elapsedMs: 0,
    errorSamples: [],
    serverCpuMs: 0,
    postgresCpuMs: 0,
    redisCpuMs: 0,
    benchCpuMs: 0,
    machineBusy: 0,
    redisCalls: new Map(),
    postgresRoundTrips: 0,
    redisRoundTrips: 0,
    rssMiB: 0,
  };
}

export async function runScenario(
  counters: StoreCounters,
  options: ScenarioOptions,
): Promise<ScenarioResult> {
  const { sides, concurrency, slices } = options;
  const sliceMs = options.durationMs / slices;
  const results = sides.map((side) => emptyResult(side.label));
  const machineTime = sides.map(() => ({ busy: 0, total: 0 }));
  const postgresSides = sides.filter((side) => side.usesPostgres);
  const countXacts = options.countXacts === true && postgresSides.length === 1;
  const xactsBefore = countXacts ? await counters.settledXacts() : 0;

  for (let slice = 0; slice < slices; slice++) {
    for (const [index, side] of sides.entries()) {
      const result = results[index] as SideResult;
      const postgresPids = await counters.postgresPids();
      const serverPids = processTree(side.pid);
      const before = {
        segments: await snapshotSegments(serverPids),
        server: snapshotCpu(serverPids),
        postgres: snapshotCpu(postgresPids),
        redis: snapshotCpu(counters.redisPids()),
        calls: await counters.redisCalls(),
        bench: process.cpuUsage(),
        machine: machineCpu(),
      };
      const fromUs = monotonicUs();
      const load = await runClosedLoop({ concurrency, durationMs: sliceMs, flow: side.flow });
      options.onSlice?.(side, { fromUs, toUs: monotonicUs() });
      if (side.usesPostgres) counters.markPostgresActivity();
      const machine = machineCpu();
      const bench = process.cpuUsage(before.bench);
      const serverPidsAfter = processTree(side.pid);
      const after = {
        server: snapshotCpu(serverPidsAfter),
        // Backends that connected during the slice count in full.
        postgres: snapshotCpu(new Set([...postgresPids, ...(await counters.postgresPids())])),
        redis: snapshotCpu(counters.redisPids()),
        calls: await counters.redisCalls(),
        segments: await snapshotSegments(serverPidsAfter),
      };
      result.rssMiB = serverPidsAfter.reduce((total, pid) => total + rssMiB(pid), 0);
      const roundTrips = segmentsBetween(before.segments, after.segments);
      result.postgresRoundTrips += roundTrips.postgres;
      result.redisRoundTrips += roundTrips.redis;
      result.flows += load.flows;
      result.errors += load.errors;
      result.latenciesMs.push(...load.latenciesMs);
      result.elapsedMs += load.elapsedMs;
      for (const sample of load.errorSamples) {
        if (result.errorSamples.length < 5 && !result.errorSamples.includes(sample))
          result.errorSamples.push(sample);
      }
      result.serverCpuMs += cpuBetween(before.server, after.server);
      result.postgresCpuMs += cpuBetween(before.postgres, after.postgres);
      result.redisCpuMs += cpuBetween(before.redis, after.redis);
      result.benchCpuMs += (bench.user + bench.system) / 1000;
      for (const [command, calls] of callsBetween(before.calls, after.calls)) {
        result.redisCalls.set(command, (result.redisCalls.get(command) ?? 0) + calls);
      }
      const time = machineTime[index] as { busy: number; total: number };
      time.busy += machine.busyMs - before.machine.busyMs;
      time.total += machine.totalMs - before.machine.totalMs;
    }
  }
  for (const [index, result] of results.entries()) {
    const time = machineTime[index] as { busy: number; total: number };
    result.machineBusy = time.total > 0 ? time.busy / time.total : 0;
  }
  if (countXacts) {
    const xacts = (await counters.settledXacts()) - xactsBefore;
    const index = sides.indexOf(postgresSides[0] as Side);
    (results[index] as SideResult).xacts = xacts;
  }
  return { name: options.name, concurrency, sides: results };
}

/** Runs every side unmeasured for `durationMs` (JIT, connection pools, first-use caches). */
export async function warmUp(
  sides: Side[],
  concurrency: number,
  durationMs: number,
  counters: StoreCounters,
) {
  for (const side of sides) {
    const load = await runClosedLoop({ concurrency, durationMs, flow: side.flow });
    if (side.usesPostgres) counters.markPostgresActivity();
    if (load.errors > 0 && load.errors === load.flows) {
      throw new Error(`${side.label}: every warm-up flow failed, e.g. ${load.errorSamples[0]}`);
    }
  }
}
