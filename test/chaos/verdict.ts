/**
 * Judges a fault run against the promises of fault-run.ts, in words an
 * operator reads: a bad answer, /readyz silent about the store, a slow
 * recovery, flows failing after it, a broken refresh chain, half-written data.
 */
import type { ChaosRig } from './chaos-rig.ts';
import { type FaultReport, type FaultRunOptions, RECOVER_WITHIN_MS, runFault } from './fault-run.ts';
import { checkIntegrity, passkeyCounters } from './integrity.ts';

/** The promises a report broke, in words; empty when it kept them all. */
export function brokenPromises(report: FaultReport, integrity: string[]): string[] {
  const broken: string[] = [];
  for (const bad of report.badAnswers.slice(0, 5)) {
    broken.push(
      `${bad.method} ${bad.path}: ${bad.status || 'no answer'} after ${Math.round(bad.durationMs)} ms ${bad.failure.slice(0, 120)}`,
    );
  }
  if (report.badAnswers.length > 5) broken.push(`… ${report.badAnswers.length - 5} more bad answers`);
  const store = report.fault.startsWith('redis') ? 'redis' : 'database';
  if (!report.readyzNamed.includes(store)) broken.push(`/readyz never named ${store}`);
  if (report.recoveryMs > RECOVER_WITHIN_MS) broken.push(`recovered after ${report.recoveryMs} ms`);
  if (report.flowsAfter === 0) broken.push('no flow completed after recovery');
  if (report.failedAfter > 0) broken.push(`${report.failedAfter} flows failed after recovery`);
  if (report.brokenRefreshChains > 0)
    broken.push(`${report.brokenRefreshChains} refresh tokens spent without a successor`);
  broken.push(...integrity);
  return broken;
}

/** Runs one fault and judges it: the report, and the promises it broke (none when kept). */
export async function runAndJudge(rig: ChaosRig, options: FaultRunOptions) {
  const countersBefore = await passkeyCounters(rig);
  const report = await runFault(rig, options);
  const integrity = await checkIntegrity(rig, { countersBefore, acceptedCounters: report.acceptedCounters });
  return { report, broken: brokenPromises(report, integrity) };
}
