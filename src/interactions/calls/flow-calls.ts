/**
 * Calls that move the login along without a factor: the state, identifying
 * by email, skipping an optional step, consent, and cancelling.
 */
import { widenGrant } from '../../oidc/widen-grant.ts';
import { UniqueViolationError } from '../../storage/errors.ts';
import {
  type Answer,
  accountExists,
  type InteractionScope,
  type LoginKit,
  normaliseEmail,
} from '../login-kit.ts';

export function flowCalls(kit: LoginKit) {
  const { durable } = kit.deps;

  return {
    async state(scope: InteractionScope): Promise<Answer> {
      let progress = await kit.loadProgress(scope);
      // Re-authentication or step-up in a classic pool: start from who is signed
      // in, so their passkeys are offered. Smart pools keep the identify step,
      // where passkey autofill runs.
      // A step-up knows its user too, so one without a passkey is shown how to get one.
      const sessionAccount = scope.interaction.session?.accountId;
      const stepUp = kit.requiredAcrOf(scope) !== undefined;
      if (
        (scope.pool.passkeys.mode === 'classic' || stepUp) &&
        !progress.email &&
        progress.factors.length === 0 &&
        sessionAccount
      ) {
        const user = await durable.users.findById(scope.pool.id, sessionAccount);
        if (user) {
          const classic = scope.pool.passkeys.mode === 'classic';
          const needsPasskey = stepUp && (await durable.passkeys.countByUser(scope.pool.id, user.id)) === 0;
          if (classic || needsPasskey)
            progress = { ...progress, email: user.email, ...(stepUp ? { sessionUserId: user.id } : {}) };
        }
      }
      return kit.advance(scope, progress);
    },

    async identify(scope: InteractionScope, { email }: { email: string }): Promise<Answer> {
      await kit.limit(scope, 'identify_ip', scope.ip);
      const progress = await kit.loadProgress(scope);
      if (progress.userId || progress.signup) throw kit.notNow('Changing the email');
      // Another email starts over: no code sent to it yet, and no step-up user behind it.
      const { codeSent: _code, sessionUserId: _stepUp, ...rest } = progress;
      return kit.advance(scope, { ...rest, email: normaliseEmail(email), factors: [] });
    },

    async skipEnroll(scope: InteractionScope): Promise<Answer> {
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(
        scope,
        progress,
        (candidate) => candidate.step === 'enroll' && candidate.optional,
        'Skipping this step',
      );
      if (step.step !== 'enroll') throw kit.notNow('Skipping this step');

      if (step.reason === 'recovery') return kit.advance(scope, { ...progress, recoveryHandled: true });

      let userId = progress.userId;
      if (!userId && progress.signup) {
        try {
          const user = await durable.users.create({
            poolId: scope.pool.id,
            email: progress.signup.email,
            emailVerified: true,
            // The handle this sign-up's passkey options already gave out, if any (progress.ts).
            webauthnUserId: progress.signup.webauthnUserId,
          });
          userId = user.id;
        } catch (error) {
          if (error instanceof UniqueViolationError) throw accountExists();
          throw error;
        }
        await kit.audit(scope, 'sign_up', 'success', { userId });
      }
      // "Not now" to a passkey at sign-up is a decline like the offer's.
      if ((step.reason === 'offer' || step.reason === 'signup') && userId) {
        await durable.users.recordEnrollPrompt(scope.pool.id, userId, new Date());
        if (step.reason === 'offer')
          kit.deps.metrics.passkeyOffers.inc({ pool: scope.pool.id, outcome: 'skipped' });
      }
      return kit.advance(scope, { ...progress, userId, enrollDeclined: true });
    },

    async consent(scope: InteractionScope, { decision }: { decision: 'allow' | 'deny' }): Promise<Answer> {
      const progress = await kit.loadProgress(scope);
      await kit.requireStep(scope, progress, (step) => step.step === 'consent', 'Consent');
      const accountId = progress.userId ?? scope.interaction.session?.accountId;
      if (!accountId) throw kit.notNow('Consent');
      if (decision === 'deny') {
        await kit.audit(scope, 'consent', 'failure', { userId: accountId, detail: { decision } });
        return kit.finishWithError(scope, 'End-User denied access');
      }
      const { Grant } = scope.provider;
      const existing = scope.interaction.grantId ? await Grant.find(scope.interaction.grantId) : undefined;
      const grant =
        existing ?? new Grant({ accountId, clientId: String(scope.interaction.params.client_id) });
      // Exactly what the screen listed: the requested scopes, and claims only within them.
      widenGrant(grant, {
        scope: scope.interaction.params.scope,
        claims: scope.interaction.params.claims,
        allowedScope: kit.clientOf(scope).config?.scope ?? '',
      });
      const grantId = await grant.save();
      await kit.audit(scope, 'consent', 'success', {
        userId: accountId,
        detail: { decision, scope: scope.interaction.params.scope },
      });
      if (scope.interaction.prompt.name === 'consent') {
        scope.interaction.result = { consent: { grantId } };
        await scope.interaction.save(kit.ttlOf(scope));
        return { redirect_to: scope.interaction.returnTo };
      }
      return kit.advance(scope, { ...progress, grantId });
    },

    async abort(scope: InteractionScope): Promise<Answer> {
      await kit.audit(scope, 'sign_in', 'failure', { detail: { reason: 'cancelled by the user' } });
      return kit.finishWithError(scope, 'End-User aborted interaction');
    },
  };
}
