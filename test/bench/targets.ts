/**
 * The performance issue's targets, judged from one run's measurements: each
 * PASS or MISS with the figure it rests on, or "not run" with the flag that
 * measures it. Sign-in targets are read at concurrency 8; the --workers
 * target at concurrency 32, where one process is saturated.
 */
import {
  flowsPerSecond,
  roundTripsPerFlow,
  serverCpuPerFlow,
  type TargetResult,
  totalCpuPerFlow,
  traceRoundTrips,
} from './report.ts';
import type { ScenarioResult } from './scenarios.ts';
import type { TracedStep } from './trace-sign-in.ts';

export interface TargetFlags {
  embedded: boolean;
  workers: number;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);

export function targetsOf(
  flags: TargetFlags,
  measured: {
    signIns: Map<number, ScenarioResult>;
    grantResults: { refresh?: ScenarioResult; clientCredentials?: ScenarioResult };
    workerResults: ScenarioResult[];
    scaleRatio?: number;
    rss?: { after: number };
    trace?: TracedStep[];
  },
): TargetResult[] {
  const targets: TargetResult[] = [];
  const atEight = measured.signIns.get(8);
  const [postern, bare] = atEight?.sides ?? [];
  if (postern && bare) {
    const signInRatio = ratio(flowsPerSecond(postern), flowsPerSecond(bare));
    targets.push({
      target: 'passkey sign-in ≥ 0.6× bare auto-login flows/s at concurrency 8',
      measured: `${signInRatio.toFixed(2)}× (${flowsPerSecond(postern).toFixed(1)} vs ${flowsPerSecond(bare).toFixed(1)} flows/s)`,
      pass: signInRatio >= 0.6,
    });
    const cpu = totalCpuPerFlow(postern);
    targets.push({
      target: '≤ 5 ms CPU per sign-in, Postern + PostgreSQL + Redis (concurrency 8)',
      measured: `${cpu.toFixed(2)} ms (Postern ${serverCpuPerFlow(postern).toFixed(2)} ms)`,
      pass: cpu <= 5,
      ...(flags.embedded ? { note: 'embedded: the stores run inside Postern' } : {}),
    });
    if (flags.embedded) {
      targets.push({
        target: '≤ 12 store round trips per sign-in',
        measured: 'n/a',
        note: 'embedded: in-process stores',
      });
    } else {
      const wire = roundTripsPerFlow(postern);
      const perStore = `${(postern.postgresRoundTrips / postern.flows).toFixed(1)} PostgreSQL + ${(postern.redisRoundTrips / postern.flows).toFixed(1)} Redis on the wire`;
      const traced = measured.trace ? `; the trace of one sign-in: ${traceRoundTrips(measured.trace)}` : '';
      targets.push({
        target: '≤ 12 store round trips per sign-in',
        measured: `${wire.toFixed(1)} (${perStore}${traced})`,
        pass: wire <= 12,
      });
    }
  } else {
    targets.push({
      target: 'sign-in targets at concurrency 8',
      measured: 'not run',
      note: 'add 8 to --concurrency',
    });
  }

  const clusterAt32 = measured.workerResults.find((result) => result.concurrency === 32);
  if (clusterAt32) {
    const [cluster, single] = clusterAt32.sides;
    const workerRatio =
      cluster && single ? ratio(flowsPerSecond(cluster), flowsPerSecond(single)) : Number.NaN;
    targets.push({
      target: `--workers ${flags.workers} ≥ 1.6× one worker (sign-ins, concurrency 32)`,
      measured: `${workerRatio.toFixed(2)}×`,
      pass: workerRatio >= 1.6,
    });
  } else targets.push({ target: '--workers 2 ≥ 1.6× one worker', measured: 'not run', note: '--workers 2' });

  for (const [label, result] of [
    ['refresh_token', measured.grantResults.refresh],
    ['client_credentials', measured.grantResults.clientCredentials],
  ] as const) {
    const [ours, theirs] = result?.sides ?? [];
    if (ours && theirs) {
      const grantRatio = ratio(flowsPerSecond(ours), flowsPerSecond(theirs));
      targets.push({
        target: `${label} ≥ 0.8× bare flows/s`,
        measured: `${grantRatio.toFixed(2)}× (${flowsPerSecond(ours).toFixed(0)} vs ${flowsPerSecond(theirs).toFixed(0)}/s)`,
        pass: grantRatio >= 0.8,
      });
    } else
      targets.push({ target: `${label} ≥ 0.8× bare flows/s`, measured: 'not run', note: 'drop --no-grants' });
  }

  targets.push(
    measured.scaleRatio === undefined
      ? {
          target: 'sign-in rate with 1,000,000 passkeys ≥ 0.95× with 1,000',
          measured: 'not run',
          note: flags.embedded ? 'needs PostgreSQL' : '--scale',
        }
      : {
          target: 'sign-in rate with 1,000,000 passkeys ≥ 0.95× with 1,000',
          measured: `${measured.scaleRatio.toFixed(2)}×`,
          pass: measured.scaleRatio >= 0.95,
        },
  );
  targets.push(
    measured.rss === undefined
      ? { target: 'RSS ≤ 250 MB with 10,000 live interactions', measured: 'not run', note: '--rss' }
      : {
          target: 'RSS ≤ 250 MB with 10,000 live interactions',
          measured: `${measured.rss.after.toFixed(0)} MiB`,
          pass: measured.rss.after * 1.048576 <= 250,
        },
  );
  return targets;
}
