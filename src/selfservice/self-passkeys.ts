/**
 * The user's passkeys through `/{pool}/api/self/passkeys…`: list them, add
 * one (creation options, then verification), rename one, remove one.
 *
 * - adding is bound to the user: the challenge names `user:{id}`, is taken
 *   before any other check, and the new passkey carries the user's WebAuthn
 *   user handle; the first second factor in a pool that uses recovery codes
 *   comes with them, as in the login flow;
 * - a passkey is removed only while the user keeps a way in (another passkey,
 *   a password the pool accepts, or email codes; src/factors/passkey/remove-passkey.ts),
 *   and removing one signs the user out everywhere else: whoever holds it may
 *   be signed in with it.
 */
import { policyOf } from '../accounts/passkey-policies.ts';
import { type PasskeyView, toPasskeyView } from '../accounts/passkey-view.ts';
import { assertPasskeysInUse, noSuchPasskey, passkeyLimit, passkeysBusy } from '../errors.ts';
import { addPasskey } from '../factors/passkey/add-passkey.ts';
import { beginPasskeyEnrollment, takeEnrollmentChallenge } from '../factors/passkey/passkey-enrollment.ts';
import { removalRefused, removePasskey } from '../factors/passkey/remove-passkey.ts';
import { refusal } from '../factors/refusal-codes.ts';
import { accountLabelFor, passkeysAllowedFor } from '../organizations/org-policy.ts';
import type { Passkey } from '../storage/types.ts';
import type { ChallengeBinding } from '../webauthn/challenge-store.ts';
import {
  type SelfServiceContext,
  type SelfServiceScope,
  type SignedOutView,
  signOutOthers,
  userOf,
  writerAccountOf,
  writerOf,
} from './self-service-scope.ts';

const _PASSKEY_REJECTED = 'That passkey could not be created. Try again, or use another authenticator.';

/** A registration's challenge belongs to the signed-in user, not to an interaction. */
const binding = (scope: SelfServiceScope, userId: string): ChallengeBinding => ({
  poolId: scope.pool.id,
  ceremony: 'registration',
  subject: `user:${userId}`,
});

export function selfPasskeys(context: SelfServiceContext) {
  const { durable, ephemeral, recoveryCodeKey } = context;

  const overLimit = (maxPerUser: number) =>
    refusal('passkey_limit', `already ${maxPerUser} passkeys (max_per_user)`);

  async function findPasskey(scope: SelfServiceScope, userId: string, id: string): Promise<Passkey> {
    const passkeys = await durable.passkeys.listByUser(scope.pool.id, userId);
    const passkey = passkeys.find((candidate) => candidate.id === id);
    if (!passkey) throw noSuchPasskey();
    return passkey;
  }

  return {
    /** The user's passkeys, oldest first. Reading needs no recent authentication. */
    async listPasskeys(scope: SelfServiceScope): Promise<PasskeyView[]> {
      const user = await userOf(context, scope);
      const passkeys = await durable.passkeys.listByUser(scope.pool.id, user.id);
      return passkeys.map(toPasskeyView);
    },

    /**
     * Creation options for one more passkey, listing the user's passkeys in
     * excludeCredentials; the challenge is bound to the user.
     * @throws {PosternError} passkey_limit when the user has `max_per_user` passkeys.
     */
    async registerOptions(scope: SelfServiceScope) {
      const account = await writerAccountOf(context, scope);
      const { user } = account;
      assertPasskeysInUse(passkeysAllowedFor(scope.pool, account), 'self-service registration options');
      const policy = policyOf(scope.pool);
      const existing = await durable.passkeys.listByUser(scope.pool.id, user.id);
      if (existing.length >= policy.maxPerUser) {
        scope.audit.record({
          event: 'passkey_registration',
          outcome: 'failure',
          detail: overLimit(policy.maxPerUser),
        });
        throw passkeyLimit(policy.maxPerUser);
      }
      const options = await beginPasskeyEnrollment(
        ephemeral,
        { policy, binding: binding(scope, user.id) },
        {
          webauthnUserId: user.webauthnUserId,
          email: user.email,
          name: user.name,
          existing,
          label: accountLabelFor(policy.accountLabel, account),
        },
      );
      scope.audit.record({
        event: 'passkey_registration_options',
        outcome: 'success',
        detail: { existing: existing.length },
      });
      return options;
    },

    /**
     * Verifies and stores the new passkey; `readBody` reads and guards the
     * request's body, once the challenge is taken. The answer carries `recovery_codes`
     * when this is the user's first second factor in a pool that uses them.
     * @throws {PosternError} passkey_rejected for any refused ceremony; passkey_limit;
     *   passkey_pool_full when the pool stores `max_per_pool` passkeys.
     */
    async registerVerify(
      scope: SelfServiceScope,
      readBody: () => Promise<{ response?: unknown; name?: string }>,
    ): Promise<PasskeyView & { recovery_codes?: string[] }> {
      // Taken first: whatever refuses this verification, the challenge is spent,
      // a body refused for its shape included (it is read only now).
      const challenge = await takeEnrollmentChallenge(ephemeral, binding(scope, scope.accountId));
      const { response, name } = await readBody();
      const account = await writerAccountOf(context, scope);
      const { user } = account;
      assertPasskeysInUse(passkeysAllowedFor(scope.pool, account), 'self-service registration');
      const policy = policyOf(scope.pool);
      const { passkey, recoveryCodes } = await addPasskey(
        { recoveryCodes: durable.recoveryCodes, recoveryCodeKey },
        {
          policy,
          challenge,
          response,
          ...(name === undefined ? {} : { name }),
          user,
          poolId: scope.pool.id,
          authentication: scope.pool.authentication,
          audit: scope.audit,
          log: scope.log,
          reason: 'self_service',
        },
        (verified) =>
          durable.passkeys.create(
            { ...verified, poolId: scope.pool.id, userId: user.id },
            { maxPerUser: policy.maxPerUser, maxPerPool: policy.maxPerPool },
          ),
      );
      return { ...toPasskeyView(passkey), ...(recoveryCodes ? { recovery_codes: recoveryCodes } : {}) };
    },

    /** @throws {PosternError} not_found for a passkey that is not this user's in this pool. */
    async renamePasskey(
      scope: SelfServiceScope,
      id: string,
      { name }: { name: string },
    ): Promise<PasskeyView> {
      const user = await writerOf(context, scope);
      const passkey = await findPasskey(scope, user.id, id);
      if (!(await durable.passkeys.rename(scope.pool.id, user.id, id, name))) throw noSuchPasskey();
      scope.audit.record({
        event: 'passkey_renamed',
        outcome: 'success',
        credentialId: passkey.credentialId,
        detail: { name },
      });
      return toPasskeyView({ ...passkey, name });
    },

    /**
     * Removes a passkey while the user keeps a way in, then signs the user out
     * everywhere else (whoever holds that passkey may be signed in with it).
     * @throws {PosternError} not_found; last_way_in; last_second_factor; conflict while another removal runs.
     */
    async deletePasskey(scope: SelfServiceScope, id: string): Promise<{ signed_out: SignedOutView }> {
      const user = await writerOf(context, scope);
      const removal = await removePasskey({ durable, ephemeral }, { pool: scope.pool, userId: user.id, id });
      if (removal.ok) {
        scope.audit.record({
          event: 'passkey_removed',
          outcome: 'success',
          credentialId: removal.passkey.credentialId,
        });
        return { signed_out: await signOutOthers(context, scope, 'passkey_removed') };
      }
      if (removal.reason === 'not_found') throw noSuchPasskey();
      if (removal.reason === 'busy') throw passkeysBusy();
      scope.audit.record({
        event: 'passkey_removed',
        outcome: 'failure',
        credentialId: removal.passkey.credentialId,
        detail: refusal(removal.reason),
      });
      throw removalRefused(removal.reason);
    },
  };
}
