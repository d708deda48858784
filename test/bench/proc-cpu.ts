/**
 * CPU time and memory of other processes, read from Linux's /proc: what the
 * bench charges to each server per flow. `utime + stime` in /proc/<pid>/stat
 * covers every thread of a process (libuv's pool, V8's GC threads), in clock
 * ticks (`getconf CLK_TCK`, 100 on Linux: 10 ms resolution, so a measurement
 * window should hold thousands of flows).
 *
 * https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ: fixed at 100 on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

/** utime + stime of `pid` in milliseconds; undefined when it is gone. */
export function cpuMsOf(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the man page, counted from field 3 (state) here.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** `pid` and every process it forked, recursively (a cluster primary's workers, esbuild's service). */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let index = 0; index < tree.length; index++) {
    const parent = tree[index] as number;
    let children = '';
    try {
      children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of children.trim().split(/\s+/).filter(Boolean)) tree.push(Number(child));
  }
  return tree;
}

/** The pids of processes whose command name (/proc/<pid>/comm) is one of `names`. */
export function pidsNamed(names: readonly string[]): number[] {
  const wanted = new Set(names);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (wanted.has(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** CPU milliseconds of a set of processes, keyed by pid, to subtract later. */
export type CpuSnapshot = Map<number, number>;

export function snapshotCpu(pids: Iterable<number>): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  for (const pid of pids) {
    const ms = cpuMsOf(pid);
    if (ms !== undefined) snapshot.set(pid, ms);
  }
  return snapshot;
}

/**
 * CPU spent between two snapshots. A process only in `after` started in
 * between and counts in full; one only in `before` exited and its last
 * stretch is lost (servers keep their processes; PostgreSQL's autovacuum
 * workers come and go).
 */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

/** Resident set size of `pid` in MiB (VmRSS), 0 when it is gone. */
export function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

/** The whole machine's CPU time so far, busy and in total (all cores), in ms, from /proc/stat. */
export function machineCpu(): { busyMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return {
    busyMs: (busy * 1000) / TICKS_PER_SECOND,
    totalMs: ((busy + idle + iowait) * 1000) / TICKS_PER_SECOND,
  };
}
