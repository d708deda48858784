/**
 * Passkey calls: sign-in (first factor, second factor, step-up), creating a
 * passkey (sign-up, required second factor, the offer, recovery) and, after a
 * recovery-code sign-in, removing a lost one.
 *
 * - A passkey as second factor must be the user's, and another credential
 *   than the first factor's.
 * - A request that demands phr/phrh is only met by a passkey of that class;
 *   a weaker one is refused, never recorded as meeting it.
 * - Creating a passkey never raises acr: it proves possession, not a
 *   phishing-resistant sign-in, so it only completes a required second factor.
 * - A verification takes its challenge before anything else, the rate limit
 *   and the step included: whatever refuses it then, the challenge is spent
 *   (https://www.w3.org/TR/webauthn-3/#sctn-cryptographic-challenges).
 */
import { noSuchPasskey, PosternError, passkeyLimit, passkeysBusy } from '../../errors.ts';
import {
  beginPasskeyEnrollment,
  finishPasskeyEnrollment,
  newUserHandle,
  takeEnrollmentChallenge,
} from '../../factors/passkey/passkey-enrollment.ts';
import {
  beginPasskeySignIn,
  finishPasskeySignIn,
  PasskeyRefused,
  type PasskeySignIn,
  takeSignInChallenge,
} from '../../factors/passkey/passkey-sign-in.ts';
import { removalRefused, removePasskey } from '../../factors/passkey/remove-passkey.ts';
import { acrMeets } from '../../oidc/acr.ts';
import { LimitExceededError, UniqueViolationError } from '../../storage/errors.ts';
import type { NewPasskey, Passkey } from '../../storage/types.ts';
import { passkeyFactor } from '../assurance.ts';
import { type Answer, accountExists, type InteractionScope, type LoginKit } from '../login-kit.ts';
import type { Step } from '../next-step.ts';
import { saveProgress } from '../progress.ts';
import { issueFirstRecoveryCodes } from './recovery-code-calls.ts';

const PASSKEY_REJECTED = 'That passkey could not be used. Try again, or choose another way.';

const acceptsPasskey = (step: Step) =>
  (step.step === 'identify' || step.step === 'first_factor' || step.step === 'second_factor') &&
  step.methods.includes('passkey');

/** A verified passkey weaker than the request demands (phrh, device-bound): refused, not recorded. */
class AcrNotMet extends Error {
  constructor(
    readonly userId: string,
    readonly credentialId: string,
    readonly required: string,
  ) {
    super(`request needs acr ${required}`);
  }
}

export function passkeyCalls(kit: LoginKit) {
  const { durable, ephemeral } = kit.deps;
  const signInDeps = () => ({ durable, ephemeral, decoyKey: kit.keys.decoy });

  async function refuse(scope: InteractionScope, event: string, error: PasskeyRefused): Promise<never> {
    scope.log.warn(
      { reason: error.reason, credential: error.credentialId, user: error.userId },
      `${event} refused`,
    );
    await kit.audit(scope, event, 'failure', {
      userId: error.userId,
      credentialId: error.credentialId,
      detail: { method: 'passkey', reason: error.reason },
    });
    if (error.counterRegression) {
      await kit.audit(scope, 'passkey_counter_regression', 'failure', {
        userId: error.userId,
        credentialId: error.credentialId,
        detail: { reason: error.reason },
      });
    }
    throw new PosternError(400, 'passkey_rejected', PASSKEY_REJECTED, { detail: error.reason });
  }

  return {
    async passkeyOptions(scope: InteractionScope) {
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(scope, progress, acceptsPasskey, 'A passkey sign-in');
      const policy = kit.policyOf(scope.pool);
      const binding = kit.binding(scope, 'authentication');
      if (step.step === 'second_factor') {
        const [first] = progress.factors;
        return beginPasskeySignIn(signInDeps(), {
          policy,
          binding,
          userId: progress.userId,
          excludeCredentialId: first?.method === 'passkey' ? first.credentialId : undefined,
        });
      }
      // A step-up confirms the user already signed in here: only their passkeys.
      if (step.step === 'first_factor' && step.reason === 'step_up' && progress.userId) {
        return beginPasskeySignIn(signInDeps(), { policy, binding, userId: progress.userId });
      }
      // Once the user typed an email (classic pools always ask for it first),
      // only that user's passkeys are listed (or decoys, so the options tell
      // nothing about the account) and may answer: the page says "Signing in
      // as …", so another account's discoverable passkey must not sign in. Before
      // that, a smart pool asks for any discoverable one, and the passkey names the user.
      return beginPasskeySignIn(signInDeps(), { policy, binding, email: progress.email });
    },

    async passkeyVerify(scope: InteractionScope, { response }: { response?: unknown }): Promise<Answer> {
      const challenge = await takeSignInChallenge(signInDeps(), kit.binding(scope, 'authentication'));
      await kit.limit(scope, 'passkey_ip', scope.ip);
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(scope, progress, acceptsPasskey, 'A passkey sign-in');
      const [first] = progress.factors;
      const secondFactor = step.step === 'second_factor';
      const required = secondFactor ? undefined : kit.requiredAcrOf(scope);
      const deviceBound = (passkey: Passkey) => !passkey.backupEligible;

      // Judged after the signature verifies and before the use is recorded, so
      // a refused passkey leaves its counter and last use as they were.
      const stepUp = step.step === 'first_factor' && step.reason === 'step_up';
      const accept = ({ user, passkey }: PasskeySignIn) => {
        if ((secondFactor || stepUp) && user.id !== progress.userId) {
          throw new PasskeyRefused(`${secondFactor ? 'second factor' : 'step-up'} from another user`, {
            userId: user.id,
          });
        }
        if (secondFactor && first?.credentialId === passkey.credentialId) {
          throw new PasskeyRefused('the first factor’s passkey again', { userId: user.id });
        }
        if (required && !acrMeets(deviceBound(passkey) ? 'phrh' : 'phr', required)) {
          throw new AcrNotMet(user.id, passkey.credentialId, required);
        }
      };
      let signIn: PasskeySignIn;
      try {
        signIn = await finishPasskeySignIn(
          signInDeps(),
          {
            policy: kit.policyOf(scope.pool),
            challenge,
            // An identified sign-in takes that user's passkey only (a step-up and a
            // second factor are held to the signed-in user by `accept`).
            ...(step.step === 'first_factor' && !stepUp && progress.email ? { email: progress.email } : {}),
          },
          response,
          accept,
        );
      } catch (error) {
        if (error instanceof PasskeyRefused) return refuse(scope, 'sign_in', error);
        if (error instanceof AcrNotMet) {
          await kit.audit(scope, 'sign_in', 'failure', {
            userId: error.userId,
            credentialId: error.credentialId,
            detail: { method: 'passkey', reason: `request needs acr ${error.required}, passkey gives phr` },
          });
          throw new PosternError(
            400,
            'acr_not_met',
            'This app asks for a passkey kept on one device, such as a security key. A synced passkey cannot be used here.',
          );
        }
        throw error;
      }
      const { user, passkey, userPresent, userVerified } = signIn;
      const factor = passkeyFactor(
        { deviceBound: deviceBound(passkey), userPresent, userVerified, credentialId: passkey.credentialId },
        kit.now(),
      );
      if (secondFactor) return kit.advance(scope, { ...progress, factors: [...progress.factors, factor] });
      return kit.advance(scope, { ...progress, userId: user.id, email: user.email, factors: [factor] });
    },

    async registerOptions(
      scope: InteractionScope,
      { mediation }: { name?: string; mediation?: 'conditional' },
    ) {
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(
        scope,
        progress,
        (candidate) => candidate.step === 'enroll',
        'Creating a passkey',
      );
      const conditional = mediation === 'conditional';
      if (
        conditional &&
        !(step.step === 'enroll' && step.reason === 'offer' && scope.pool.enrollment.conditional_create)
      ) {
        throw kit.notNow('Creating a passkey without a prompt');
      }
      const policy = kit.policyOf(scope.pool);
      const target = { policy, binding: kit.binding(scope, 'registration') };
      if (!progress.userId) {
        // A sign-up: one user handle for the whole interaction, kept in its progress.
        const { signup } = progress;
        if (!signup) throw kit.notNow('Creating a passkey');
        let webauthnUserId = signup.webauthnUserId;
        if (!webauthnUserId) {
          webauthnUserId = newUserHandle();
          await saveProgress(
            ephemeral,
            scope.pool.id,
            scope.interaction.uid,
            { ...progress, signup: { ...signup, webauthnUserId } },
            kit.ttlOf(scope),
          );
        }
        return beginPasskeyEnrollment(ephemeral, target, {
          webauthnUserId,
          email: signup.email,
          existing: [],
        });
      }
      const user = await durable.users.findById(scope.pool.id, progress.userId);
      if (!user) throw new Error('signed-in user vanished');
      const existing = await durable.passkeys.listByUser(scope.pool.id, user.id);
      if (existing.length >= policy.maxPerUser) {
        await kit.audit(scope, 'passkey_registration', 'failure', {
          userId: user.id,
          detail: { reason: `already ${policy.maxPerUser} passkeys (max_per_user)` },
        });
        throw passkeyLimit(policy.maxPerUser);
      }
      return beginPasskeyEnrollment(ephemeral, target, { ...user, existing }, { conditional });
    },

    async registerVerify(
      scope: InteractionScope,
      { response, name }: { response?: unknown; name?: string },
    ): Promise<Answer> {
      const challenge = await takeEnrollmentChallenge(ephemeral, kit.binding(scope, 'registration'));
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(
        scope,
        progress,
        (candidate) => candidate.step === 'enroll',
        'Creating a passkey',
      );
      if (step.step !== 'enroll' || !step.methods.includes('passkey')) throw kit.notNow('Creating a passkey');
      const policy = kit.policyOf(scope.pool);
      const account = progress.userId
        ? await durable.users.findById(scope.pool.id, progress.userId)
        : undefined;
      if (progress.userId && !account) throw new Error('signed-in user vanished');
      // An account's passkey carries its handle; a sign-up's, the one its options gave.
      const userHandle = account ? account.webauthnUserId : progress.signup?.webauthnUserId;
      let enrollment: Awaited<ReturnType<typeof finishPasskeyEnrollment>>;
      try {
        enrollment = await finishPasskeyEnrollment({ policy, challenge }, response, {
          ...(name === undefined ? {} : { name }),
          ...(userHandle ? { userHandle } : {}),
        });
      } catch (error) {
        if (error instanceof PasskeyRefused) return refuse(scope, 'passkey_registration', error);
        throw error;
      }
      const passkeyData: Omit<NewPasskey, 'poolId' | 'userId'> = enrollment.passkey;
      let userId = progress.userId;
      try {
        if (!userId) {
          const email = progress.signup?.email;
          if (!email) throw kit.notNow('Creating a passkey');
          const created = await durable.users.createWithPasskey(
            { poolId: scope.pool.id, email, emailVerified: true, webauthnUserId: enrollment.webauthnUserId },
            passkeyData,
          );
          userId = created.user.id;
          await kit.audit(scope, 'sign_up', 'success', { userId, credentialId: passkeyData.credentialId });
        } else {
          await durable.passkeys.create(
            { ...passkeyData, poolId: scope.pool.id, userId },
            { maxPerUser: policy.maxPerUser },
          );
        }
      } catch (error) {
        if (error instanceof LimitExceededError) {
          await kit.audit(scope, 'passkey_registration', 'failure', {
            userId,
            credentialId: passkeyData.credentialId,
            detail: { reason: `already ${policy.maxPerUser} passkeys (max_per_user)` },
          });
          throw passkeyLimit(policy.maxPerUser);
        }
        if (error instanceof UniqueViolationError && error.constraint?.includes('email'))
          throw accountExists();
        if (error instanceof UniqueViolationError) {
          return refuse(scope, 'passkey_registration', new PasskeyRefused('credential already registered'));
        }
        throw error;
      }
      await kit.audit(scope, 'passkey_registration', 'success', {
        userId,
        credentialId: passkeyData.credentialId,
        detail: {
          aaguid: passkeyData.aaguid,
          backup_eligible: passkeyData.backupEligible,
          reason: step.reason,
          ...(enrollment.conditional ? { mediation: 'conditional' } : {}),
        },
      });
      if (step.reason === 'offer') {
        kit.deps.metrics.passkeyOffers.inc({
          pool: scope.pool.id,
          outcome: enrollment.conditional ? 'accepted_conditional' : 'accepted',
        });
      }
      const recoveryCodes = await issueFirstRecoveryCodes(kit, scope, userId);
      // A passkey made here, with a gesture, stands in for the second step it
      // would otherwise be asked for at once: the one a required second factor
      // asks for, or, where the pool asks passkey owners for one, the step
      // owning a passkey brings. One made without a gesture (conditional
      // create) proves nobody was there, so it counts for nothing.
      const { second_factor, second_factor_required } = scope.pool.authentication;
      const poolAsksForPasskey = second_factor_required !== 'never' && second_factor.includes('passkey');
      const countsAsFactor =
        !enrollment.conditional &&
        (step.reason === 'second_factor' ||
          ((step.reason === 'signup' || step.reason === 'offer') && poolAsksForPasskey));
      const factors = countsAsFactor
        ? [
            ...progress.factors,
            {
              ...passkeyFactor(
                {
                  deviceBound: !passkeyData.backupEligible,
                  userPresent: true,
                  userVerified: passkeyData.uvInitialized,
                  credentialId: passkeyData.credentialId,
                },
                kit.now(),
              ),
              acr: undefined,
              multiFactor: false,
            },
          ]
        : progress.factors;
      return kit.advance(
        scope,
        { ...progress, userId, factors },
        recoveryCodes ? { recovery_codes: recoveryCodes } : {},
      );
    },

    /** After a recovery-code sign-in: remove a passkey the user lost, if they keep a way in. */
    async removePasskey(scope: InteractionScope, { id }: { id: string }): Promise<Answer> {
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(
        scope,
        progress,
        (candidate) => candidate.step === 'enroll' && candidate.reason === 'recovery',
        'Removing a passkey',
      );
      const userId = progress.userId;
      if (step.step !== 'enroll' || !userId) throw kit.notNow('Removing a passkey');
      const removal = await removePasskey({ durable, ephemeral }, { pool: scope.pool, userId, id });
      if (!removal.ok) {
        if (removal.reason === 'not_found') throw noSuchPasskey();
        if (removal.reason === 'busy') throw passkeysBusy();
        await kit.audit(scope, 'passkey_removed', 'failure', {
          userId,
          credentialId: removal.passkey.credentialId,
          detail: { reason: removal.reason },
        });
        throw removalRefused(removal.reason);
      }
      await kit.audit(scope, 'passkey_removed', 'success', {
        userId,
        credentialId: removal.passkey.credentialId,
        detail: { reason: 'recovery' },
      });
      return kit.advance(scope, progress);
    },
  };
}
