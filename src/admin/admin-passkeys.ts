/**
 * A user's passkeys through `/{pool}/api/admin/…/passkeys`: list, rename,
 * remove. An operator may remove the last one (recovering an account: the
 * user gets a new one through an enrolment link), and every removal signs
 * the user out everywhere: whoever holds the passkey may be signed in with it.
 */
import { noSuchPasskey, passkeysBusy } from '../errors.ts';
import { removePasskey } from '../factors/passkey/remove-passkey.ts';
import {
  type AdminContext,
  type AdminPasskeyView,
  type AdminScope,
  type SignedOutView,
  signOutEverywhere,
  toAdminPasskeyView,
  userOf,
} from './admin-scope.ts';

export function adminPasskeys(context: AdminContext) {
  const { durable, ephemeral } = context;

  return {
    /** The user's passkeys, oldest first (at most `max_per_user`: one page). @throws {PosternError} 404 for an unknown user. */
    async listPasskeys(
      scope: AdminScope,
      userId: string,
    ): Promise<{ passkeys: AdminPasskeyView[]; next_cursor: null }> {
      const user = await userOf(context, scope, userId);
      const passkeys = await durable.passkeys.listByUser(scope.pool.id, user.id);
      return { passkeys: passkeys.map(toAdminPasskeyView), next_cursor: null };
    },

    /** @throws {PosternError} 404 for an unknown user, or a passkey that is not theirs. */
    async renamePasskey(
      scope: AdminScope,
      userId: string,
      id: string,
      { name }: { name: string },
    ): Promise<AdminPasskeyView> {
      const user = await userOf(context, scope, userId);
      const passkey = (await durable.passkeys.listByUser(scope.pool.id, user.id)).find(
        (candidate) => candidate.id === id,
      );
      if (!passkey || !(await durable.passkeys.rename(scope.pool.id, user.id, id, name)))
        throw noSuchPasskey();
      scope.audit.record({
        event: 'passkey_renamed',
        outcome: 'success',
        userId: user.id,
        credentialId: passkey.credentialId,
        detail: { name, previous_name: passkey.name },
      });
      return toAdminPasskeyView({ ...passkey, name });
    },

    /**
     * Signs the user out everywhere, then removes the passkey, the last one
     * too. In that order: should the removal fail, a retry finds the passkey
     * and does both again, where the other order could leave sessions made
     * with a removed passkey alive behind a 404.
     * @throws {PosternError} 404; 409 conflict while another change to the user's passkeys runs.
     */
    async deletePasskey(
      scope: AdminScope,
      userId: string,
      id: string,
    ): Promise<{ id: string; signed_out: SignedOutView }> {
      const user = await userOf(context, scope, userId);
      const passkeys = await durable.passkeys.listByUser(scope.pool.id, user.id);
      if (!passkeys.some((passkey) => passkey.id === id)) throw noSuchPasskey();
      const signedOut = await signOutEverywhere(context, scope, user.id, 'passkey_removed');
      const removal = await removePasskey(
        { durable, ephemeral },
        { pool: scope.pool, userId: user.id, id, byOperator: true },
      );
      if (!removal.ok) throw removal.reason === 'busy' ? passkeysBusy() : noSuchPasskey();
      scope.audit.record({
        event: 'passkey_removed',
        outcome: 'success',
        userId: user.id,
        credentialId: removal.passkey.credentialId,
      });
      return { id, signed_out: signedOut };
    },
  };
}
