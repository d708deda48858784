/**
 * Calls that move the login along without a factor: the state, identifying
 * by email, choosing the organization, skipping an optional step, consent,
 * and cancelling.
 */
import { normaliseEmail } from '../accounts/email.ts';
import { errorOf } from '../errors.ts';
import { refusal } from '../factors/refusal-codes.ts';
import type { LoginContext } from './login-context.ts';
import { notNow } from './login-errors.ts';
import type { Answer } from './present-step.ts';
import { createSignUpAccount } from './sign-up-account.ts';

export const flowCalls = {
  async state(ctx: LoginContext): Promise<Answer> {
    let { progress } = ctx;
    // Re-authentication or step-up in a classic pool: start from who is signed
    // in, so their passkeys are offered. Smart pools keep the identify step,
    // where passkey autofill runs.
    // A step-up knows its user too, so one without a passkey is shown how to get one.
    const sessionAccount = ctx.scope.interaction.session?.accountId;
    const stepUp = ctx.requiredAcr !== undefined;
    const classic = ctx.pool.passkeys.mode === 'classic';
    if ((classic || stepUp) && !progress.email && progress.factors.length === 0 && sessionAccount) {
      const account = await ctx.account(sessionAccount);
      if (account && (classic || account.passkeys === 0))
        progress = {
          ...progress,
          email: account.user.email,
          ...(stepUp ? { sessionUserId: account.user.id } : {}),
        };
    }
    return ctx.advance(progress);
  },

  async identify(ctx: LoginContext, { email }: { email: string }): Promise<Answer> {
    await ctx.limit('identify_ip', ctx.scope.ip);
    const { progress } = ctx;
    if (progress.userId || progress.signup) throw notNow('Changing the email');
    // Another email starts over: no code sent to it yet, no step-up user behind it, and
    // no organization the previous one settled.
    const {
      codeSent: _code,
      sessionUserId: _stepUp,
      organizationId: _organization,
      organizationRefused: _refused,
      ...rest
    } = progress;
    return ctx.advance({ ...rest, email: normaliseEmail(email), factors: [] });
  },

  /** The organization picker: one of the user's own, offered by the step. */
  async chooseOrganization(
    ctx: LoginContext,
    { organization_id }: { organization_id: string },
  ): Promise<Answer> {
    const step = await ctx.require(
      (candidate) => candidate.step === 'organization',
      'Choosing an organization',
    );
    if (step.step !== 'organization' || !step.organizations.some((choice) => choice.id === organization_id))
      throw errorOf('invalid_request', { description: 'Choose one of your organizations.' });
    return ctx.advance({ ...ctx.progress, organizationId: organization_id });
  },

  async skipEnroll(ctx: LoginContext): Promise<Answer> {
    const step = await ctx.require(
      (candidate) => candidate.step === 'enroll' && candidate.optional,
      'Skipping this step',
    );
    if (step.step !== 'enroll') throw notNow('Skipping this step');
    const { progress } = ctx;
    const { durable } = ctx.kit.deps;
    if (step.reason === 'recovery') return ctx.advance({ ...progress, recoveryHandled: true });

    let userId = progress.userId;
    if (!userId && progress.signup) userId = await createSignUpAccount(ctx, progress.signup);
    // "Not now" to a passkey at sign-up is a decline like the offer's.
    if ((step.reason === 'offer' || step.reason === 'signup') && userId) {
      await durable.users.recordEnrollPrompt(ctx.pool.id, userId, new Date(ctx.kit.clock()));
      if (step.reason === 'offer')
        ctx.kit.deps.metrics.passkeyOffers.inc({ pool: ctx.pool.id, outcome: 'skipped' });
    }
    return ctx.advance({ ...progress, userId, enrollDeclined: true });
  },

  async consent(ctx: LoginContext, { decision }: { decision: 'allow' | 'deny' }): Promise<Answer> {
    await ctx.require((step) => step.step === 'consent', 'Consent');
    const { progress, scope } = ctx;
    const accountId = progress.userId ?? scope.interaction.session?.accountId;
    if (!accountId) throw notNow('Consent');
    if (decision === 'deny') {
      ctx.audit('consent', 'failure', { userId: accountId, detail: { decision } });
      return ctx.deny('End-User denied access');
    }
    // Exactly what the screen listed: the requested scopes, and claims only within them;
    // in a grant of its own where the client's is for another organization than this login.
    const grantId = await scope.oidc.grantConsent(accountId, { fresh: await ctx.needsFreshGrant() });
    ctx.audit('consent', 'success', {
      userId: accountId,
      detail: { decision, scope: scope.interaction.params.scope },
    });
    if (scope.interaction.prompt.name === 'consent')
      return { redirect_to: await scope.oidc.finishConsent({ grantId }) };
    return ctx.advance({ ...progress, grantId });
  },

  async abort(ctx: LoginContext): Promise<Answer> {
    ctx.audit('sign_in', 'failure', { detail: refusal('cancelled', 'cancelled by the user') });
    return ctx.deny('End-User aborted interaction');
  },
};
