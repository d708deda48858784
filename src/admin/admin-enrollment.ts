/**
 * Enrolment links through `/{pool}/api/admin/users/{user_id}/enrollment-link`:
 * a one-time, expiring link for the user to create a passkey, mailed to them
 * and answered to the operator (src/enrollment/enrollment-links.ts). A new
 * link replaces the user's previous one.
 */
import type { IssuedLink } from '../enrollment/enrollment-links.ts';
import { assertPasskeysInUse } from '../errors.ts';
import { passkeysAllowedFor } from '../organizations/org-policy.ts';
import { type AdminContext, type AdminScope, noSuchUser } from './admin-scope.ts';

export function adminEnrollment(context: AdminContext) {
  return {
    /** @throws {PosternError} 404 for an unknown user. */
    async enrollmentLink(scope: AdminScope, userId: string): Promise<IssuedLink> {
      const account = await context.durable.users.findAccount(scope.pool.id, userId);
      if (!account) throw noSuchUser();
      const { user } = account;
      // Not for a pool without passkeys, nor a member of an organization that switched them off.
      assertPasskeysInUse(
        passkeysAllowedFor(scope.pool, account),
        'an enrolment link for a user who may not register passkeys',
      );
      const link = await context.links.issue(scope.pool, user, { createdBy: `admin:${scope.clientId}` });
      if (!link) throw noSuchUser();
      scope.audit.record({
        event: 'enrollment_link_issued',
        outcome: 'success',
        userId: user.id,
        detail: { expires_at: link.expires_at, mailed: link.mailed },
      });
      return link;
    },
  };
}
