/**
 * `npm run chaos`: every fault of fault-run.ts in turn, on one rig, under
 * mixed load; prints what each did and exits 1 when one broke a promise.
 *
 *   npm run chaos -- [--faults redis-kill,postgres-slow] [--fault-seconds 8]
 *                    [--sign-ins 6] [--sign-ups 1] [--refreshes 2] [--users 60]
 *                    [--log postern.log]
 *
 * CI runs a short version of the same runs as a test
 * (test/integration/reliability/store-faults.test.ts).
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startChaosRig } from './chaos-rig.ts';
import { ANSWER_WITHIN_MS, FAULTS, type Fault, RECOVER_WITHIN_MS } from './fault-run.ts';
import { runAndJudge } from './verdict.ts';

const { values } = parseArgs({
  options: {
    faults: { type: 'string', default: FAULTS.join(',') },
    'fault-seconds': { type: 'string', default: '8' },
    'sign-ins': { type: 'string', default: '6' },
    'sign-ups': { type: 'string', default: '1' },
    refreshes: { type: 'string', default: '2' },
    users: { type: 'string', default: '60' },
    /** Where to write Postern's own log afterwards, to see what a bad answer was. */
    log: { type: 'string' },
  },
});

const faults = String(values.faults)
  .split(',')
  .map((name) => name.trim()) as Fault[];
for (const fault of faults) {
  if (!FAULTS.includes(fault)) throw new Error(`unknown fault ${fault} (faults: ${FAULTS.join(', ')})`);
}

const format = (counts: Record<number, number>) =>
  Object.entries(counts)
    .map(([status, count]) => `${status}×${count}`)
    .join(' ');

const rig = await startChaosRig({ users: Number(values.users) });
let failures = 0;
try {
  console.log(
    `faults under load: answers within ${ANSWER_WITHIN_MS} ms while a store is broken, recovery within ${RECOVER_WITHIN_MS} ms`,
  );
  for (const fault of faults) {
    const { report, broken } = await runAndJudge(rig, {
      fault,
      beforeMs: 2_000,
      faultMs: Number(values['fault-seconds']) * 1000,
      afterMs: RECOVER_WITHIN_MS + 3_000,
      signIns: Number(values['sign-ins']),
      signUps: Number(values['sign-ups']),
      refreshes: Number(values.refreshes),
    });
    console.log(`\n## ${fault}`);
    console.log(`  before: ${format(report.statuses.before)}`);
    console.log(`  during: ${format(report.statuses.during)}; slowest answer ${report.slowestDuringMs} ms`);
    console.log(
      `  /readyz: ${report.readyzNamed.join(', ') || '(never unready)'} after ${report.readyzFirstMs ?? '-'} ms`,
    );
    console.log(`  after:  ${format(report.statuses.after)}; recovered in ${report.recoveryMs} ms`);
    console.log(`  flows after recovery: ${report.flowsAfter}, failed ${report.failedAfter}`);
    if (report.lostRefreshAnswers > 0)
      console.log(
        `  refresh rotations whose answer was lost (the app's retry was a replay; it signed in again): ${report.lostRefreshAnswers}`,
      );
    if (broken.length > 0) {
      failures += 1;
      console.log(`  BROKEN:\n    ${broken.join('\n    ')}`);
      console.log(`  flow errors:\n    ${report.flowErrors.slice(0, 8).join('\n    ')}`);
    } else console.log('  kept every promise');
  }
} finally {
  if (values.log) await writeFile(String(values.log), rig.postern.output());
  await rig.close();
}
process.exitCode = failures > 0 ? 1 : 0;
