/**
 * Reads the V8 CPU profiles `node --cpu-prof` wrote for Postern and says
 * where the CPU went, in three views:
 *
 * - self time per function: what was on top of the stack (writev, JSON.parse,
 *   an ECDSA verify …);
 * - self time per package or source folder that caused it: each sample goes
 *   to the nearest frame on its stack that lives in node_modules/<package> or
 *   src/<folder>, so the syscall under a Redis command counts for ioredis and
 *   a JSON.parse for whoever parsed;
 * - total time of Postern's own functions (src/…): every sample counts once
 *   for each src function on its stack, which shows the expensive use cases.
 *
 * A .cpuprofile is JSON: `nodes` (the call tree, each with its `callFrame`
 * and `children`), `samples` (the node on top at each tick) and `timeDeltas`
 * (µs between ticks). Only ticks inside the given windows count (the measured
 * slices), so start-up and module loading stay out.
 *
 * https://chromedevtools.github.io/devtools-protocol/tot/Profiler/#type-Profile
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** A stretch of time on the monotonic clock, in µs (V8's profile clock is CLOCK_MONOTONIC, like process.hrtime). */
export interface Window {
  fromUs: number;
  toUs: number;
}

/** Now on the clock profiles use, in µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface TimeShare {
  name: string;
  ms: number;
  /** Share of the profile's busy (non-idle) time in the windows. */
  share: number;
}

export interface ProfileSummary {
  file: string;
  busyMs: number;
  functions: TimeShare[];
  /** Self time by the package or source folder that caused it. */
  owners: TimeShare[];
  /** Total (inclusive) time of Postern's own functions. */
  postern: TimeShare[];
}

/** node_modules/<package> or src/<folder>; undefined for node's internals, natives and V8's entries. */
function packageOf(url: string): string | undefined {
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dependency) return dependency[1] as string;
  const source = /\/(src\/[^/]+)\//.exec(url);
  return source?.[1];
}

function shortUrl(url: string): string {
  return url
    .replace(/^file:\/\//, '')
    .replace(/^.*node_modules\//, '')
    .replace(/^.*\/(src\/)/, '$1');
}

/** tsx's transpiled modules put everything on line 1, so the column tells anonymous functions apart. */
function nameOf({ functionName, url, lineNumber, columnNumber }: ProfileNode['callFrame']): string {
  return `${functionName || '(anonymous)'}${url ? ` ${shortUrl(url)}:${lineNumber + 1}:${columnNumber + 1}` : ''}`;
}

/** Ticks per node id inside `windows` (all of them without windows). */
function ticksPerNode(profile: CpuProfile, windows?: Window[]): Map<number, number> {
  const ticks = new Map<number, number>();
  const deltas = profile.timeDeltas ?? [];
  let time = profile.startTime;
  for (const [index, id] of (profile.samples ?? []).entries()) {
    time += deltas[index] ?? 0;
    if (windows && !windows.some((window) => time >= window.fromUs && time <= window.toUs)) continue;
    ticks.set(id, (ticks.get(id) ?? 0) + 1);
  }
  return ticks;
}

function summarise(file: string, profile: CpuProfile, top: number, windows?: Window[]): ProfileSummary {
  const allTicks = profile.samples?.length ?? 0;
  const msPerTick = allTicks > 0 ? (profile.endTime - profile.startTime) / 1000 / allTicks : 0;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

  // The nearest package frame at or above a node (memoised; null: none up to the root).
  const owners = new Map<number, string | null>();
  const ownerOf = (id: number): string | null => {
    const known = owners.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id) as ProfileNode;
    const parent = parentOf.get(id);
    const owner = packageOf(node.callFrame.url) ?? (parent === undefined ? null : ownerOf(parent));
    owners.set(id, owner);
    return owner;
  };
  /** Where a tick without a package frame goes: GC, the event loop's own natives, node's internals. */
  const unowned = ({ functionName, url }: ProfileNode['callFrame']) => {
    if (url) return `node:${url.replace(/^node:/, '').split('/')[0]} (no package on the stack)`;
    return functionName.startsWith('(') ? functionName : `${functionName} (native, no package on the stack)`;
  };
  const posternStacks = new Map<number, string[]>();
  const posternFunctionsOf = (id: number): string[] => {
    const known = posternStacks.get(id);
    if (known) return known;
    const node = byId.get(id) as ProfileNode;
    const parent = parentOf.get(id);
    const above = parent === undefined ? [] : posternFunctionsOf(parent);
    const own = node.callFrame.url.includes('/src/') ? nameOf(node.callFrame) : undefined;
    const functions = own && !above.includes(own) ? [...above, own] : above;
    posternStacks.set(id, functions);
    return functions;
  };

  const selfTime = new Map<string, number>();
  const ownerTime = new Map<string, number>();
  const posternTime = new Map<string, number>();
  const add = (totals: Map<string, number>, key: string, ms: number) =>
    totals.set(key, (totals.get(key) ?? 0) + ms);
  let busy = 0;
  for (const [id, ticks] of ticksPerNode(profile, windows)) {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    const ms = ticks * msPerTick;
    busy += ms;
    add(selfTime, nameOf(node.callFrame), ms);
    add(ownerTime, ownerOf(id) ?? unowned(node.callFrame), ms);
    for (const name of posternFunctionsOf(id)) add(posternTime, name, ms);
  }
  const rank = (totals: Map<string, number>) =>
    [...totals.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: busy > 0 ? ms / busy : 0 }));
  return {
    file,
    busyMs: busy,
    functions: rank(selfTime),
    owners: rank(ownerTime),
    postern: rank(posternTime),
  };
}

/**
 * The summary of each profile in `dir` with ticks in the windows, busiest
 * first (a cluster writes one per process, the tsx loader thread its own).
 * @param options.windows (Optional) Only ticks inside these. Defaults to the whole profile.
 * @param options.top (Optional) Entries per view. Defaults to 25.
 */
export function summariseProfiles(
  dir: string,
  { top = 25, windows }: { top?: number; windows?: Window[] } = {},
): ProfileSummary[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) =>
      summarise(
        join(dir, name),
        JSON.parse(readFileSync(join(dir, name), 'utf8')) as CpuProfile,
        top,
        windows,
      ),
    )
    .filter((summary) => summary.busyMs > 0)
    .sort((a, b) => b.busyMs - a.busyMs);
}
