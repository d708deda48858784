/**
 * Passkey calls: sign-in (first factor, second factor, step-up), creating a
 * passkey (sign-up, required second factor, the offer, recovery) and, after a
 * recovery-code sign-in, removing a lost one (which signs the user out
 * everywhere else, as the recovery sign-in did: whoever holds it may have
 * signed in with it since; src/factors/sign-out-others.ts).
 *
 * - A passkey as second factor must be the user's, and another credential
 *   than the first factor's.
 * - A request that demands phr/phrh is only met by a passkey of that class;
 *   a weaker one is refused, never recorded as meeting it.
 * - Creating a passkey never raises acr: it proves possession, not a
 *   phishing-resistant sign-in, so it only completes a required second factor.
 * - A verification takes its challenge before anything else, the rate limit,
 *   the step and the body's shape included: whatever refuses it then, the
 *   challenge is spent (https://www.w3.org/TR/webauthn-3/#sctn-cryptographic-challenges).
 */
import { noSuchPasskey, PosternError, passkeyLimit, passkeyPoolFull, passkeysBusy } from '../../errors.ts';
import type { LoginContext } from '../../interactions/login-context.ts';
import { accountExists, notNow } from '../../interactions/login-errors.ts';
import type { Step } from '../../interactions/next-step.ts';
import type { Answer } from '../../interactions/present-step.ts';
import type { CompletedFactor } from '../../interactions/progress.ts';
import { acrMeets } from '../../oidc/acr.ts';
import { LimitExceededError, UniqueViolationError } from '../../storage/errors.ts';
import type { NewPasskey, Passkey } from '../../storage/types.ts';
import type { BodyReader } from '../factor.ts';
import {
  beginPasskeyEnrollment,
  finishPasskeyEnrollment,
  newUserHandle,
  takeEnrollmentChallenge,
} from '../passkey/passkey-enrollment.ts';
import {
  beginPasskeySignIn,
  finishPasskeySignIn,
  PasskeyRefused,
  type PasskeySignIn,
  takeSignInChallenge,
} from '../passkey/passkey-sign-in.ts';
import { removalRefused, removePasskey } from '../passkey/remove-passkey.ts';
import { issueFirstRecoveryCodes } from '../recovery-code/recovery-code-calls.ts';
import { refusal } from '../refusal-codes.ts';
import { signOutOthers, withSignedOut } from '../sign-out-others.ts';

/** The factor a verified passkey assertion (or registration) completes. */
export function passkeyFactor(
  {
    deviceBound,
    userPresent,
    userVerified,
    credentialId,
  }: { deviceBound: boolean; userPresent: boolean; userVerified: boolean; credentialId: string },
  at: number,
): CompletedFactor {
  return {
    method: 'passkey',
    amr: ['pop', deviceBound ? 'hwk' : 'swk', ...(userPresent ? ['user'] : [])],
    acr: deviceBound ? 'phrh' : 'phr',
    multiFactor: userVerified,
    at,
    credentialId,
  };
}

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

const signInDeps = (ctx: LoginContext) => ({
  durable: ctx.kit.deps.durable,
  ephemeral: ctx.kit.deps.ephemeral,
  decoyKey: ctx.kit.keys.decoy,
  clock: ctx.kit.clock,
});

function refuse(ctx: LoginContext, event: string, error: PasskeyRefused): never {
  const { code, reason } = error;
  ctx.log.warn({ code, reason, credential: error.credentialId, user: error.userId }, `${event} refused`);
  ctx.audit(event, 'failure', {
    userId: error.userId,
    credentialId: error.credentialId,
    detail: { method: 'passkey', code, reason },
  });
  if (error.counterRegression) {
    ctx.audit('passkey_counter_regression', 'failure', {
      userId: error.userId,
      credentialId: error.credentialId,
      detail: { code, reason },
    });
  }
  throw new PosternError(400, 'passkey_rejected', PASSKEY_REJECTED, { detail: error.reason });
}

export const passkeyCalls = {
  async passkeyOptions(ctx: LoginContext) {
    const step = await ctx.require(acceptsPasskey, 'A passkey sign-in');
    const { progress } = ctx;
    const policy = ctx.kit.policyOf(ctx.pool);
    const binding = ctx.binding('authentication');
    if (step.step === 'second_factor') {
      const [first] = progress.factors;
      return beginPasskeySignIn(signInDeps(ctx), {
        policy,
        binding,
        userId: progress.userId,
        excludeCredentialId: first?.method === 'passkey' ? first.credentialId : undefined,
      });
    }
    // A step-up confirms the user already signed in here: only their passkeys.
    if (step.step === 'first_factor' && step.reason === 'step_up' && progress.userId) {
      return beginPasskeySignIn(signInDeps(ctx), { policy, binding, userId: progress.userId });
    }
    // Once the user typed an email (classic pools always ask for it first),
    // only that user's passkeys are listed (or decoys, so the options tell
    // nothing about the account) and may answer: the page says "Signing in
    // as …", so another account's discoverable passkey must not sign in. Before
    // that, a smart pool asks for any discoverable one, and the passkey names the user.
    return beginPasskeySignIn(signInDeps(ctx), { policy, binding, email: progress.email });
  },

  async passkeyVerify(ctx: LoginContext, readBody: BodyReader<{ response?: unknown }>): Promise<Answer> {
    // Together (one round trip): the challenge is spent whatever the limit says.
    const [challenge] = await Promise.all([
      takeSignInChallenge(signInDeps(ctx), ctx.binding('authentication')),
      ctx.limit('passkey_ip', ctx.scope.ip),
    ]);
    // Read only now: a body refused for its shape has spent the challenge too.
    const { response } = await readBody();
    const step = await ctx.require(acceptsPasskey, 'A passkey sign-in');
    const { progress } = ctx;
    const [first] = progress.factors;
    const secondFactor = step.step === 'second_factor';
    const required = secondFactor ? undefined : ctx.requiredAcr;
    const deviceBound = (passkey: Passkey) => !passkey.backupEligible;

    // Judged after the signature verifies and before the use is recorded, so
    // a refused passkey leaves its counter and last use as they were.
    const stepUp = step.step === 'first_factor' && step.reason === 'step_up';
    const accept = ({ user, passkey }: PasskeySignIn) => {
      if ((secondFactor || stepUp) && user.id !== progress.userId) {
        throw new PasskeyRefused(
          'wrong_user',
          `${secondFactor ? 'second factor' : 'step-up'} from another user`,
          { userId: user.id },
        );
      }
      if (secondFactor && first?.credentialId === passkey.credentialId) {
        throw new PasskeyRefused('first_factor_passkey', 'the first factor’s passkey again', {
          userId: user.id,
        });
      }
      if (required && !acrMeets(deviceBound(passkey) ? 'phrh' : 'phr', required)) {
        throw new AcrNotMet(user.id, passkey.credentialId, required);
      }
    };
    let signIn: PasskeySignIn;
    try {
      signIn = await finishPasskeySignIn(
        signInDeps(ctx),
        {
          policy: ctx.kit.policyOf(ctx.pool),
          challenge,
          // An identified sign-in takes that user's passkey only (a step-up and a
          // second factor are held to the signed-in user by `accept`).
          ...(step.step === 'first_factor' && !stepUp && progress.email ? { email: progress.email } : {}),
        },
        response,
        accept,
      );
    } catch (error) {
      if (error instanceof PasskeyRefused) return refuse(ctx, 'sign_in', error);
      if (error instanceof AcrNotMet) {
        ctx.audit('sign_in', 'failure', {
          userId: error.userId,
          credentialId: error.credentialId,
          detail: {
            method: 'passkey',
            ...refusal('acr_not_met', `request needs acr ${error.required}, passkey gives phr`),
          },
        });
        throw new PosternError(
          400,
          'acr_not_met',
          'This app asks for a passkey kept on one device, such as a security key. A synced passkey cannot be used here.',
        );
      }
      throw error;
    }
    const { user, account, passkey, userPresent, userVerified } = signIn;
    ctx.knowAccount(account);
    const factor = passkeyFactor(
      { deviceBound: deviceBound(passkey), userPresent, userVerified, credentialId: passkey.credentialId },
      ctx.now(),
    );
    if (secondFactor) return ctx.advance({ ...progress, factors: [...progress.factors, factor] });
    return ctx.advance({ ...progress, userId: user.id, email: user.email, factors: [factor] });
  },

  async registerOptions(ctx: LoginContext, { mediation }: { name?: string; mediation?: 'conditional' }) {
    const step = await ctx.require(
      (candidate) => candidate.step === 'enroll' && candidate.methods.includes('passkey'),
      'Creating a passkey',
    );
    const { progress, pool } = ctx;
    const { durable, ephemeral } = ctx.kit.deps;
    const conditional = mediation === 'conditional';
    if (
      conditional &&
      !(step.step === 'enroll' && step.reason === 'offer' && pool.enrollment.conditional_create)
    ) {
      throw notNow('Creating a passkey without a prompt');
    }
    const policy = ctx.kit.policyOf(pool);
    const target = { policy, binding: ctx.binding('registration') };
    if (!progress.userId) {
      // A sign-up: one user handle for the whole interaction, made when the email was
      // proven (email-code-calls.ts), so options asked for at once all carry it. A
      // progress saved by an older build has none yet: it gets one here.
      const { signup } = progress;
      if (!signup) throw notNow('Creating a passkey');
      let webauthnUserId = signup.webauthnUserId;
      if (!webauthnUserId) {
        webauthnUserId = newUserHandle();
        await ctx.save({ ...progress, signup: { ...signup, webauthnUserId } });
      }
      return beginPasskeyEnrollment(
        ephemeral,
        target,
        { webauthnUserId, email: signup.email, existing: [], label: await ctx.passkeyLabel() },
        { now: ctx.kit.clock() },
      );
    }
    const user = (await ctx.account(progress.userId))?.user;
    if (!user) throw new Error('signed-in user vanished');
    const existing = await durable.passkeys.listByUser(pool.id, user.id);
    if (existing.length >= policy.maxPerUser) {
      ctx.audit('passkey_registration', 'failure', {
        userId: user.id,
        detail: refusal('passkey_limit', `already ${policy.maxPerUser} passkeys (max_per_user)`),
      });
      throw passkeyLimit(policy.maxPerUser);
    }
    return beginPasskeyEnrollment(
      ephemeral,
      target,
      { ...user, existing, label: await ctx.passkeyLabel() },
      { conditional, now: ctx.kit.clock() },
    );
  },

  async registerVerify(
    ctx: LoginContext,
    readBody: BodyReader<{ response?: unknown; name?: string }>,
  ): Promise<Answer> {
    const { durable, ephemeral } = ctx.kit.deps;
    const challenge = await takeEnrollmentChallenge(ephemeral, ctx.binding('registration'), ctx.kit.clock());
    // Read only now: a body refused for its shape has spent the challenge too.
    const { response, name } = await readBody();
    const step = await ctx.require((candidate) => candidate.step === 'enroll', 'Creating a passkey');
    if (step.step !== 'enroll' || !step.methods.includes('passkey')) throw notNow('Creating a passkey');
    const { progress, pool } = ctx;
    const policy = ctx.kit.policyOf(pool);
    const account = progress.userId ? (await ctx.account(progress.userId))?.user : undefined;
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
      if (error instanceof PasskeyRefused) return refuse(ctx, 'passkey_registration', error);
      throw error;
    }
    const passkeyData: Omit<NewPasskey, 'poolId' | 'userId'> = enrollment.passkey;
    let userId = progress.userId;
    try {
      if (!userId) {
        const email = progress.signup?.email;
        if (!email) throw notNow('Creating a passkey');
        const created = await durable.users.createWithPasskey(
          { poolId: pool.id, email, emailVerified: true, webauthnUserId: enrollment.webauthnUserId },
          passkeyData,
          { maxPerPool: policy.maxPerPool },
        );
        userId = created.user.id;
        ctx.audit('sign_up', 'success', { userId, credentialId: passkeyData.credentialId });
      } else {
        await durable.passkeys.create(
          { ...passkeyData, poolId: pool.id, userId },
          { maxPerUser: policy.maxPerUser, maxPerPool: policy.maxPerPool },
        );
      }
    } catch (error) {
      // A full pool: nothing was written (a sign-up's user neither), the challenge is spent.
      if (error instanceof LimitExceededError && error.scope === 'per_pool') {
        ctx.log.warn({ maxPerPool: error.limit }, 'passkey registration refused: the pool is full');
        ctx.audit('passkey_registration', 'failure', {
          userId,
          credentialId: passkeyData.credentialId,
          detail: refusal('passkey_pool_full', `the pool stores ${error.limit} passkeys (max_per_pool)`),
        });
        throw passkeyPoolFull();
      }
      if (error instanceof LimitExceededError) {
        ctx.audit('passkey_registration', 'failure', {
          userId,
          credentialId: passkeyData.credentialId,
          detail: refusal('passkey_limit', `already ${policy.maxPerUser} passkeys (max_per_user)`),
        });
        throw passkeyLimit(policy.maxPerUser);
      }
      if (error instanceof UniqueViolationError && error.constraint?.includes('email')) throw accountExists();
      if (error instanceof UniqueViolationError) {
        return refuse(
          ctx,
          'passkey_registration',
          new PasskeyRefused('credential_registered', 'credential already registered', {
            credentialId: passkeyData.credentialId,
          }),
        );
      }
      throw error;
    }
    ctx.accountChanged(userId);
    ctx.audit('passkey_registration', 'success', {
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
      ctx.kit.deps.metrics.passkeyOffers.inc({
        pool: pool.id,
        outcome: enrollment.conditional ? 'accepted_conditional' : 'accepted',
      });
    }
    const recoveryCodes = await issueFirstRecoveryCodes(ctx, userId);
    // A passkey made here, with a gesture, stands in for the second step it
    // would otherwise be asked for at once: the one a required second factor
    // asks for, or, where the pool asks passkey owners for one, the step
    // owning a passkey brings. One made without a gesture (conditional
    // create) proves nobody was there, so it counts for nothing.
    const { second_factor, second_factor_required } = pool.authentication;
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
              ctx.now(),
            ),
            acr: undefined,
            multiFactor: false,
          },
        ]
      : progress.factors;
    return ctx.advance(
      { ...progress, userId, factors },
      recoveryCodes ? { recovery_codes: recoveryCodes } : {},
    );
  },

  /**
   * After a recovery-code sign-in: remove a passkey the user lost, if they
   * keep a way in, then sign them out everywhere else (this browser's session
   * stays if it is theirs). The answer is the step, with `signed_out`.
   */
  async removePasskey(ctx: LoginContext, { id }: { id: string }): Promise<Answer> {
    const step = await ctx.require(
      (candidate) => candidate.step === 'enroll' && candidate.reason === 'recovery',
      'Removing a passkey',
    );
    const { progress } = ctx;
    const { durable, ephemeral } = ctx.kit.deps;
    const userId = progress.userId;
    if (step.step !== 'enroll' || !userId) throw notNow('Removing a passkey');
    const removal = await removePasskey({ durable, ephemeral }, { pool: ctx.pool, userId, id });
    if (!removal.ok) {
      if (removal.reason === 'not_found') throw noSuchPasskey();
      if (removal.reason === 'busy') throw passkeysBusy();
      ctx.audit('passkey_removed', 'failure', {
        userId,
        credentialId: removal.passkey.credentialId,
        detail: refusal(removal.reason),
      });
      throw removalRefused(removal.reason);
    }
    ctx.accountChanged(userId);
    ctx.audit('passkey_removed', 'success', {
      userId,
      credentialId: removal.passkey.credentialId,
      detail: { reason: 'recovery' },
    });
    // After the removal: a sign-in that starts later needs the passkeys as they are now.
    const signedOut = await signOutOthers(ctx, userId, 'passkey_removed');
    return withSignedOut(await ctx.advance(progress), signedOut);
  },
};
