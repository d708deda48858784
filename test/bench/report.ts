/**
 * Turns measurements into the text the bench prints: one table per scenario
 * (per side: flows/s, latency, errors, CPU per flow of the server, of
 * PostgreSQL and of Redis, the bench's own, the machine's busy share, store
 * counts per flow; then the first side's ratio to the others), the per-hop
 * trace of one sign-in, the CPU profile's hot spots, and the targets of the
 * performance issue with PASS or MISS.
 */
import type { ProfileSummary } from './cpu-profile.ts';
import { quantile } from './load.ts';
import type { ScenarioResult, SideResult } from './scenarios.ts';
import type { TracedStep } from './trace-sign-in.ts';

export const flowsPerSecond = (side: SideResult) =>
  side.elapsedMs > 0 ? (side.flows * 1000) / side.elapsedMs : 0;
const perFlow = (value: number, side: SideResult) => (side.flows > 0 ? value / side.flows : Number.NaN);
export const totalCpuPerFlow = (side: SideResult) =>
  perFlow(side.serverCpuMs + side.postgresCpuMs + side.redisCpuMs, side);
export const serverCpuPerFlow = (side: SideResult) => perFlow(side.serverCpuMs, side);
export const redisCallsPerFlow = (side: SideResult) =>
  perFlow(
    [...side.redisCalls.values()].reduce((sum, calls) => sum + calls, 0),
    side,
  );
export const roundTripsPerFlow = (side: SideResult) =>
  perFlow(side.postgresRoundTrips + side.redisRoundTrips, side);
export const xactsPerFlow = (side: SideResult) =>
  side.xacts === undefined ? Number.NaN : perFlow(side.xacts, side);

const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[0] as number) : cell.padStart(widths[column] as number),
      )
      .join('  ');
  return [line(header), ...rows.map(line)];
}

export function formatScenario(
  result: ScenarioResult,
  { durationS, slices }: { durationS: number; slices: number },
): string {
  const lines = [
    '',
    `== ${result.name}, concurrency ${result.concurrency} (${durationS} s per side, ${slices} interleaved slices)`,
  ];
  const header = [
    'side',
    'flows/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'server',
    'pg',
    'redis',
    'total',
    'bench',
    'machine',
    'rss MiB',
    'pg rt',
    'redis rt',
    'pg xacts',
    'redis calls',
  ];
  const rows = result.sides.map((side) => [
    side.label,
    fixed(flowsPerSecond(side)),
    fixed(quantile(side.latenciesMs, 0.5)),
    fixed(quantile(side.latenciesMs, 0.99)),
    String(side.errors),
    fixed(serverCpuPerFlow(side), 2),
    fixed(perFlow(side.postgresCpuMs, side), 2),
    fixed(perFlow(side.redisCpuMs, side), 2),
    fixed(totalCpuPerFlow(side), 2),
    fixed(perFlow(side.benchCpuMs, side), 2),
    `${Math.round(side.machineBusy * 100)}%`,
    fixed(side.rssMiB, 0),
    fixed(perFlow(side.postgresRoundTrips, side)),
    fixed(perFlow(side.redisRoundTrips, side)),
    fixed(xactsPerFlow(side)),
    fixed(redisCallsPerFlow(side)),
  ]);
  const [first, ...others] = result.sides;
  if (first) {
    for (const other of others) {
      const ratioOf = (pick: (side: SideResult) => number) => `${fixed(pick(first) / pick(other), 2)}×`;
      rows.push([
        `${first.label} / ${other.label}`,
        ratioOf(flowsPerSecond),
        ratioOf((side) => quantile(side.latenciesMs, 0.5)),
        ratioOf((side) => quantile(side.latenciesMs, 0.99)),
        '',
        ratioOf(serverCpuPerFlow),
        '',
        '',
        ratioOf(totalCpuPerFlow),
        '',
        '',
        '',
        '',
        '',
        '',
        '',
      ]);
    }
  }
  lines.push(...table(header, rows).map((line) => `  ${line}`));
  lines.push(
    '  per flow: CPU ms of the server, PostgreSQL, Redis, their total, and the bench itself; machine: busy share of all cores; rss: the server’s after its last slice;',
    '  pg rt, redis rt: requests the server sent to each store (on the wire); pg xacts: transactions; redis calls: commands, scripts’ own included',
  );
  for (const side of result.sides) {
    if (side.redisCalls.size > 0 && side.flows > 0) {
      const commands = [...side.redisCalls.entries()]
        .filter(([, calls]) => calls / side.flows >= 0.05)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([command, calls]) => `${command} ${fixed(calls / side.flows, 2)}`)
        .join(' · ');
      lines.push(`  redis calls per flow, ${side.label}: ${commands}`);
    }
    for (const sample of side.errorSamples) lines.push(`  error (${side.label}): ${sample}`);
  }
  return lines.join('\n');
}

export function formatTrace(steps: TracedStep[]): string {
  const lines = ['', '== store round trips of one sign-in, by hop (Redis MONITOR + log_statement=all)'];
  const rows = steps.map((step) => [
    step.step,
    String(step.redisRoundTrips),
    String(step.redisInScripts),
    String(step.sql.length),
    String(step.redisRoundTrips + step.sql.length),
  ]);
  const sum = (pick: (step: TracedStep) => number) => steps.reduce((total, step) => total + pick(step), 0);
  rows.push([
    'total',
    String(sum((step) => step.redisRoundTrips)),
    String(sum((step) => step.redisInScripts)),
    String(sum((step) => step.sql.length)),
    String(sum((step) => step.redisRoundTrips + step.sql.length)),
  ]);
  lines.push(
    ...table(['hop', 'redis round trips', 'in scripts', 'sql statements', 'round trips'], rows).map(
      (line) => `  ${line}`,
    ),
  );
  for (const step of steps) {
    if (step.redis.length === 0 && step.sql.length === 0) continue;
    lines.push(`  ${step.step}`);
    for (const command of step.redis) lines.push(`    redis  ${command}`);
    for (const statement of step.sql) lines.push(`    sql    ${statement}`);
  }
  return lines.join('\n');
}

export function traceRoundTrips(steps: TracedStep[]): number {
  return steps.reduce((total, step) => total + step.redisRoundTrips + step.sql.length, 0);
}

export function formatProfiles(dir: string, summaries: ProfileSummary[], flows?: number): string {
  const lines = ['', `== CPU profile of Postern during the measured sign-in slices (${dir})`];
  const busiest = summaries[0]?.busyMs ?? 0;
  const view = (title: string, entries: ProfileSummary['functions']) => {
    lines.push(`  ${title}:`);
    for (const entry of entries) {
      const perFlow = flows ? `${fixed(entry.ms / flows, 2).padStart(6)} ms/flow  ` : '';
      lines.push(`    ${fixed(entry.share * 100).padStart(5)}%  ${perFlow}${entry.name}`);
    }
  };
  // A cluster writes one profile per process; the tsx loader thread's is idle once started.
  for (const summary of summaries.filter((one) => one.busyMs >= busiest * 0.2)) {
    lines.push(`  ${summary.file}: ${fixed(summary.busyMs / 1000)} s busy in the windows`);
    view(
      'self time by the package or src folder that caused it (nearest such frame on the stack)',
      summary.owners.slice(0, 15),
    );
    view('self time by function', summary.functions);
    view("total time of Postern's own functions (src/…)", summary.postern.slice(0, 20));
  }
  return lines.join('\n');
}

export interface TargetResult {
  target: string;
  /** The measured figure, as printed. */
  measured: string;
  /** undefined: not measured in this run (`note` says how to). */
  pass?: boolean;
  note?: string;
}

export function formatTargets(targets: TargetResult[]): string {
  const lines = ['', '== targets'];
  for (const { target, measured, pass, note } of targets) {
    const verdict = pass === undefined ? '----' : pass ? 'PASS' : 'MISS';
    lines.push(`  ${verdict}  ${target}: ${measured}${note ? ` (${note})` : ''}`);
  }
  return lines.join('\n');
}
