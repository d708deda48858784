/**
 * The passkey rules of a user outside a login (self-service, enrolment
 * links), where no organization is chosen: every organization of theirs
 * applies (./org-policy.ts).
 */
import { policyOf } from '../accounts/passkey-policies.ts';
import type { PoolConfig } from '../config/types.ts';
import type { UserRepository } from '../storage/types.ts';
import { accountLabelFor, passkeysAllowedFor } from './org-policy.ts';

/** Whether the user may register a passkey now, and the label it is made with (pickers show it). */
export async function passkeyRulesFor(
  users: Pick<UserRepository, 'findAccount'>,
  pool: PoolConfig,
  userId: string,
): Promise<{ allowed: boolean; label: string }> {
  const account = await users.findAccount(pool.id, userId);
  return {
    allowed: account !== undefined && passkeysAllowedFor(pool, account),
    label: accountLabelFor(policyOf(pool).accountLabel, account),
  };
}
