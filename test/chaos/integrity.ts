/**
 * What a fault must not leave behind, read from PostgreSQL after the run:
 * - a user without a passkey (a sign-up writes the user and the passkey together);
 * - a passkey counter that moved without a sign-in Postern accepted, or an
 *   accepted sign-in whose counter was not kept: each seeded user's counter
 *   must be the one of their last sign-in that passkey/verify answered 200
 *   for (or the one they started with).
 * Refresh chains are checked while the load runs (fault-run.ts): a refresh
 * that spent its token without the successor reaching the app breaks its chain.
 */
import type { ChaosRig } from './chaos-rig.ts';

export type Counters = Map<string, number>;

export async function passkeyCounters(rig: ChaosRig): Promise<Counters> {
  const rows = await rig.query<{ email: string; counter: string }>(
    `select u.email, p.counter from users u join passkeys p on p.user_id = u.id where u.pool_id = $1`,
    [rig.poolId],
  );
  return new Map(rows.map((row) => [row.email, Number(row.counter)]));
}

export async function checkIntegrity(
  rig: ChaosRig,
  { countersBefore, acceptedCounters }: { countersBefore: Counters; acceptedCounters: Counters },
): Promise<string[]> {
  const problems: string[] = [];
  const [orphans] = await rig.query<{ n: string }>(
    `select count(*) as n from users u
      where u.pool_id = $1 and not exists (select 1 from passkeys p where p.user_id = u.id)`,
    [rig.poolId],
  );
  if (Number(orphans?.n) > 0) problems.push(`${orphans?.n} users without a passkey`);
  const countersAfter = await passkeyCounters(rig);
  for (const [email, before] of countersBefore) {
    const expected = acceptedCounters.get(email) ?? before;
    const stored = countersAfter.get(email);
    if (stored !== expected)
      problems.push(`${email}: counter ${stored}, but the last accepted sign-in had ${expected}`);
  }
  return problems;
}
