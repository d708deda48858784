/**
 * A user's authenticator app through `DELETE /{pool}/api/admin/users/{user_id}/totp`:
 * the operator's way to recover an account whose owner lost the phone with
 * their TOTP app (self-service needs a sign-in the lost app may be needed
 * for). Like removing a passkey, it signs the user out everywhere first.
 */
import { notFound } from '../errors.ts';
import {
  type AdminContext,
  type AdminScope,
  type SignedOutView,
  signOutEverywhere,
  userOf,
} from './admin-scope.ts';

const noTotp = () => notFound('This user has no authenticator app.');

export function adminTotp(context: AdminContext) {
  const { durable } = context;
  return {
    /** @throws {PosternError} 404 for an unknown user, or one without an authenticator app. */
    async removeTotp(scope: AdminScope, userId: string): Promise<{ signed_out: SignedOutView }> {
      const user = await userOf(context, scope, userId);
      if (!(await durable.totp.find(scope.pool.id, user.id))) throw noTotp();
      const signedOut = await signOutEverywhere(context, scope, user.id, 'totp_removed');
      if (!(await durable.totp.delete(scope.pool.id, user.id))) throw noTotp();
      scope.audit.record({ event: 'totp_removed', outcome: 'success', userId: user.id });
      return { signed_out: signedOut };
    },
  };
}
