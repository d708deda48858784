/**
 * What every interaction call shares: loading and saving this login's
 * progress, asking `nextStep` what comes next, presenting that step as the
 * API's answer, finishing the login (amr/acr from the factors), auditing, and
 * rate limits. The calls themselves live in ./calls/, one module per factor.
 */
import type { Interaction, Provider } from 'oidc-provider';
import type { PoolConfig } from '../config/types.ts';
import type { Mailer } from '../email/mailer.ts';
import { PosternError, rateLimited } from '../errors.ts';
import type { Logger } from '../logging/create-logger.ts';
import { type AcrRequestSources, acrClaimFor, requestedAcrValues, requiredAcr } from '../oidc/acr.ts';
import { deriveKey } from '../secrets/derive-key.ts';
import type { DurableStore, EphemeralStore, RateLimiter, RateLimitRule, User } from '../storage/types.ts';
import type { ChallengeBinding } from '../webauthn/challenge-store.ts';
import { createPasskeyPolicy, type PasskeyPolicy } from '../webauthn/passkey-policy.ts';
import { assessAssurance } from './assurance.ts';
import { type KnownDeviceCookie, knownDeviceOf, rememberDevice } from './known-devices.ts';
import type { LoginMetrics } from './login-metrics.ts';
import { type AccountFacts, type FlowPolicy, nextStep, type Step } from './next-step.ts';
import { deleteProgress, loadProgress, type Method, type Progress, saveProgress } from './progress.ts';
import { RATE_LIMITS } from './rate-limits.ts';

export interface LoginServiceDeps {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  mailer: Mailer;
  logger: Logger;
  /** The operator secret; keys for decoy credentials and recovery codes derive from it. */
  secret: string;
  metrics: LoginMetrics;
}

/** One interaction of one pool, as a request presents it. */
export interface InteractionScope {
  pool: PoolConfig;
  provider: Provider;
  interaction: Interaction;
  ip: string;
  userAgent: string;
  log: Logger;
  /** This browser's known-device cookie for the pool (./known-devices.ts). */
  knownDevice: KnownDeviceCookie;
}

export type StepAnswer = {
  step: Exclude<Step['step'], 'done'>;
  methods: Method[];
  optional?: boolean;
  reason?: string;
  email?: string;
  client: { id: string; name: string };
  scopes?: string[];
  code_sent?: true;
  /** Shown once: the codes made when the user enrolled their first second factor. */
  recovery_codes?: string[];
  recovery_codes_remaining?: number;
  /** In the recovery step: the passkeys the user may remove. */
  passkeys?: Array<{ id: string; name: string; created_at: string; last_used_at: string | null }>;
  /** The offer after a password sign-in: the page may first try to create the passkey without a prompt. */
  conditional_create?: true;
  /** The pool lets anyone sign up (a pool setting: it says nothing about the email). */
  signup_open?: true;
  /** Where this step lets the user choose a password: the shortest the pool accepts. */
  password_min_length?: number;
};

/** Where the browser goes next; `recovery_codes` when this very answer issued them (show them first). */
export type Answer = StepAnswer | ({ redirect_to: string } & AnswerExtras);

/** What a call learned about the login, beyond progress, for its answer. */
export interface AnswerExtras {
  recovery_codes?: string[];
  recovery_codes_remaining?: number;
  code_sent?: true;
}

export function createLoginKit(deps: LoginServiceDeps) {
  const { durable, ephemeral } = deps;
  const keys = {
    decoy: deriveKey(deps.secret, 'decoy-credentials'),
    recoveryCodes: deriveKey(deps.secret, 'recovery-codes'),
    knownDevices: deriveKey(deps.secret, 'known-devices'),
  };
  const limiters = new Map<string, RateLimiter>();
  const limiterFor = (name: string, rule: Omit<RateLimitRule, 'name'>) => {
    let limiter = limiters.get(name);
    if (!limiter) {
      limiter = ephemeral.rateLimiter({ name, ...rule });
      limiters.set(name, limiter);
    }
    return limiter;
  };
  const policies = new WeakMap<PoolConfig, PasskeyPolicy>();

  const kit = {
    deps,
    keys,

    policyOf(pool: PoolConfig): PasskeyPolicy {
      const cached = policies.get(pool);
      if (cached) return cached;
      const policy = createPasskeyPolicy(pool);
      policies.set(pool, policy);
      return policy;
    },

    clientOf(scope: InteractionScope) {
      const id = String(scope.interaction.params.client_id);
      const client = scope.pool.clients.find((candidate) => candidate.client_id === id);
      return {
        id,
        name: client?.client_name ?? id,
        firstParty: client?.first_party ?? false,
        config: client,
      };
    },

    binding(scope: InteractionScope, ceremony: ChallengeBinding['ceremony']): ChallengeBinding {
      return { poolId: scope.pool.id, ceremony, subject: `interaction:${scope.interaction.uid}` };
    },

    ttlOf(scope: InteractionScope): number {
      return scope.interaction.exp - Math.floor(Date.now() / 1000);
    },

    now(): number {
      return Math.floor(Date.now() / 1000);
    },

    /** Counts one attempt against a limit of RATE_LIMITS. @throws {PosternError} 429 with Retry-After. */
    async limit(scope: InteractionScope, name: keyof typeof RATE_LIMITS, key: string) {
      await kit.limitWith(scope, name, RATE_LIMITS[name], key);
    },

    /**
     * Counts one attempt against a named rule (pool-specific limits). The
     * moment a limit trips is audited, once per window (not every refused
     * attempt: a flood must not turn into as many writes).
     * @throws {PosternError} 429.
     */
    async limitWith(scope: InteractionScope, name: string, rule: Omit<RateLimitRule, 'name'>, key: string) {
      const decision = await limiterFor(name, rule).consume(key);
      if (decision.allowed) return;
      if (decision.firstRefusal) {
        scope.log.warn({ limit: name }, 'rate limit reached');
        await kit.audit(scope, 'rate_limited', 'failure', {
          detail: { limit: name, window_seconds: rule.windowSeconds },
        });
      }
      throw rateLimited(decision.retryAfterSeconds);
    },

    /**
     * For limits that count failures only: refuses while `key` has no
     * attempt left, without counting this one (see `countFailure`).
     * @throws {PosternError} 429.
     */
    async checkLimit(name: keyof typeof RATE_LIMITS, key: string) {
      const decision = await limiterFor(name, RATE_LIMITS[name]).peek(key);
      if (!decision.allowed) throw rateLimited(decision.retryAfterSeconds);
    },

    /** Counts one failure against a limit checked by `checkLimit`; audits the failure that uses it up. */
    async countFailure(scope: InteractionScope, name: keyof typeof RATE_LIMITS, key: string) {
      const rule = RATE_LIMITS[name];
      const decision = await limiterFor(name, rule).consume(key);
      if (decision.allowed && decision.remaining === 0) {
        scope.log.warn({ limit: name }, 'rate limit reached');
        await kit.audit(scope, 'rate_limited', 'failure', {
          detail: { limit: name, window_seconds: rule.windowSeconds },
        });
      }
    },

    async resetLimit(name: string, rule: Omit<RateLimitRule, 'name'>, key: string) {
      await limiterFor(name, rule).reset(key);
    },

    async audit(
      scope: InteractionScope,
      event: string,
      outcome: 'success' | 'failure',
      details: {
        userId?: string | null;
        credentialId?: string | null;
        detail?: Record<string, unknown>;
      } = {},
    ) {
      await durable.auditEvents.append({
        poolId: scope.pool.id,
        event,
        outcome,
        userId: details.userId ?? null,
        credentialId: details.credentialId ?? null,
        ip: scope.ip,
        userAgent: scope.userAgent,
        detail: {
          client_id: String(scope.interaction.params.client_id),
          interaction: scope.interaction.uid,
          ...details.detail,
        },
      });
    },

    /** The device id this browser holds for the account, when it signed in to it before. */
    knownDeviceOf(scope: InteractionScope, email: string): string | undefined {
      return knownDeviceOf(keys.knownDevices, scope.knownDevice.read(), { poolId: scope.pool.id, email });
    },

    async loadProgress(scope: InteractionScope): Promise<Progress> {
      return loadProgress(ephemeral, scope.pool.id, scope.interaction.uid);
    },

    async accountFacts(scope: InteractionScope, userId: string): Promise<AccountFacts> {
      const [passkeys, codes, password] = await Promise.all([
        durable.passkeys.countByUser(scope.pool.id, userId),
        durable.recoveryCodes.countUnused(scope.pool.id, userId),
        durable.users.getPasswordHash(scope.pool.id, userId),
      ]);
      return { passkeys, hasRecoveryCodes: codes > 0, hasPassword: password !== undefined };
    },

    /** Where this request names the authentication context it wants. */
    acrRequestOf(scope: InteractionScope): AcrRequestSources {
      const { interaction } = scope;
      return {
        acrValues: interaction.params.acr_values,
        claims: interaction.params.claims,
        defaultAcrValues: kit.clientOf(scope).config?.default_acr_values,
      };
    },

    /** The acr this request demands (phr or phrh), if any: only a passkey sign-in meets it. */
    requiredAcrOf(scope: InteractionScope) {
      return requiredAcr(kit.acrRequestOf(scope));
    },

    flowOf(scope: InteractionScope, user: User | undefined): FlowPolicy {
      const { pool } = scope;
      const { enrollment } = pool;
      const lastPrompt = user?.enrollPromptedAt?.getTime();
      const required = kit.requiredAcrOf(scope);
      return {
        mode: pool.passkeys.mode,
        firstFactors: pool.authentication.first_factor,
        secondFactors: pool.authentication.second_factor,
        secondFactorRequired: pool.authentication.second_factor_required,
        passkeyCountsAsTwoFactors: pool.authentication.passkey_counts_as_two_factors,
        offerPasskey:
          enrollment.offer_passkey &&
          (lastPrompt === undefined || Date.now() - lastPrompt >= enrollment.ask_again_after * 1000),
        ...(required ? { requiredAcr: required } : {}),
      };
    },

    /** What the interaction needs before it can finish: the step, or done. */
    async currentStep(scope: InteractionScope, progress: Progress): Promise<Step> {
      // A first-party client never shows a consent screen, even for prompt=consent
      // (which offline_access needs): its grant is widened by the provider (oidc/).
      if (scope.interaction.prompt.name === 'consent')
        return kit.clientOf(scope).firstParty ? { step: 'done' } : { step: 'consent' };
      // Before any factor, a step-up knows its user from the session.
      const userId = progress.userId ?? progress.sessionUserId;
      const user = userId ? await durable.users.findById(scope.pool.id, userId) : undefined;
      const account = user ? await kit.accountFacts(scope, user.id) : undefined;
      return nextStep(kit.flowOf(scope, user), progress, account, {
        needsConsent: !kit.clientOf(scope).firstParty && !progress.grantId,
      });
    },

    async present(
      scope: InteractionScope,
      step: Exclude<Step, { step: 'done' | 'unmet' }>,
      progress: Progress,
    ): Promise<StepAnswer> {
      const client = kit.clientOf(scope);
      const answer: StepAnswer = {
        step: step.step,
        methods: 'methods' in step ? step.methods : [],
        client: { id: client.id, name: client.name },
      };
      const email = progress.email ?? progress.signup?.email;
      if (email) answer.email = email;
      if ((step.step === 'first_factor' || step.step === 'second_factor') && step.reason)
        answer.reason = step.reason;
      // No "create an account" while a signed-in user steps up: they have one.
      if (
        (step.step === 'identify' || step.step === 'first_factor') &&
        scope.pool.registration.mode === 'open' &&
        !kit.requiredAcrOf(scope)
      ) {
        answer.signup_open = true;
      }
      // A first factor step takes a pending code too where codes only prove a sign-up's email.
      if (
        progress.codeSent &&
        (step.step === 'first_factor' || ('methods' in step && step.methods.includes('email_otp')))
      )
        answer.code_sent = true;
      if (step.step === 'enroll') {
        answer.optional = step.optional;
        answer.reason = step.reason;
        if (step.methods.includes('password'))
          answer.password_min_length = scope.pool.authentication.password.min_length;
        if (step.reason === 'recovery' && progress.userId)
          answer.passkeys = await kit.listPasskeys(scope, progress.userId);
        if (step.reason === 'offer' && scope.pool.enrollment.conditional_create && progress.passwordEntered) {
          answer.conditional_create = true;
        }
      }
      if (step.step === 'consent') {
        answer.scopes = String(scope.interaction.params.scope ?? '')
          .split(' ')
          .filter(Boolean);
      }
      return answer;
    },

    async listPasskeys(scope: InteractionScope, userId: string) {
      const passkeys = await durable.passkeys.listByUser(scope.pool.id, userId);
      return passkeys.map((passkey) => ({
        id: passkey.id,
        name: passkey.name,
        created_at: passkey.createdAt.toISOString(),
        last_used_at: passkey.lastUsedAt?.toISOString() ?? null,
      }));
    },

    /** Saves progress and answers with the next step, or finishes the login. */
    async advance(scope: InteractionScope, progress: Progress, extras: AnswerExtras = {}): Promise<Answer> {
      const step = await kit.currentStep(scope, progress);
      if (step.step === 'done') return { ...(await kit.finish(scope, progress)), ...extras };
      if (step.step === 'unmet') {
        await kit.audit(scope, 'sign_in', 'failure', {
          userId: progress.userId ?? progress.sessionUserId,
          detail: { reason: 'the requested acr needs a passkey this user cannot create here' },
        });
        return kit.finishWithError(
          scope,
          'The app asks for a passkey sign-in, and this account has no passkey nor a way to create one here.',
          'unmet_authentication_requirements',
        );
      }
      let next = progress;
      if (step.step === 'enroll' && step.reason === 'offer' && !progress.offerShown) {
        deps.metrics.passkeyOffers.inc({ pool: scope.pool.id, outcome: 'shown' });
        next = { ...progress, offerShown: true };
      }
      await saveProgress(ephemeral, scope.pool.id, scope.interaction.uid, next, kit.ttlOf(scope));
      return { ...(await kit.present(scope, step, next)), ...extras };
    },

    async finish(scope: InteractionScope, progress: Progress): Promise<Answer> {
      const { interaction } = scope;
      // A consent answered for the user's session (no login in this interaction): first-party only.
      const firstPartyConsent = kit.clientOf(scope).firstParty ? { consent: {} } : {};
      if (interaction.prompt.name === 'consent') {
        interaction.result = firstPartyConsent;
        await interaction.save(kit.ttlOf(scope));
        await deleteProgress(ephemeral, scope.pool.id, interaction.uid);
        return { redirect_to: interaction.returnTo };
      }
      const userId = progress.userId;
      if (!userId) throw new Error('finishing a login without a user');
      const { amr, acr: performed } = assessAssurance(progress.factors);
      const acr = acrClaimFor(performed, requestedAcrValues(kit.acrRequestOf(scope)));
      interaction.result = {
        // auth_time is when the user last proved something, not when they left an offer or consent step.
        login: { accountId: userId, amr, acr, remember: true, ts: lastAuthenticatedAt(progress, kit.now()) },
        // A first-party client's consent is implied (a prompt=consent is met with the login).
        ...(progress.grantId ? { consent: { grantId: progress.grantId } } : firstPartyConsent),
      };
      await interaction.save(kit.ttlOf(scope));
      await deleteProgress(ephemeral, scope.pool.id, interaction.uid);
      const email = progress.email ?? progress.signup?.email;
      if (email) {
        const cookie = rememberDevice(keys.knownDevices, scope.knownDevice.read(), {
          poolId: scope.pool.id,
          email,
        });
        scope.knownDevice.write(cookie);
      }
      await kit.audit(scope, 'sign_in', 'success', {
        userId,
        detail: {
          amr,
          acr,
          performed_acr: performed,
          methods: progress.factors.map((factor) => factor.method),
        },
      });
      scope.log.info({ user: userId, amr, acr }, 'sign-in complete');
      return { redirect_to: interaction.returnTo };
    },

    async finishWithError(
      scope: InteractionScope,
      description: string,
      error: 'access_denied' | 'unmet_authentication_requirements' = 'access_denied',
    ): Promise<Answer> {
      const { interaction } = scope;
      interaction.result = { error, error_description: description };
      await interaction.save(kit.ttlOf(scope));
      await deleteProgress(ephemeral, scope.pool.id, interaction.uid);
      return { redirect_to: interaction.returnTo };
    },

    notNow(what: string): PosternError {
      return new PosternError(400, 'invalid_request', `${what} is not possible at this step.`, {
        detail: `${what} out of order`,
      });
    },

    async requireStep(
      scope: InteractionScope,
      progress: Progress,
      allowed: (step: Step) => boolean,
      what: string,
    ) {
      const step = await kit.currentStep(scope, progress);
      if (!allowed(step)) throw kit.notNow(what);
      return step;
    },
  };
  return kit;
}

export type LoginKit = ReturnType<typeof createLoginKit>;

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export const accountExists = () =>
  new PosternError(409, 'account_exists', 'An account with this email already exists. Sign in instead.');

function lastAuthenticatedAt(progress: Progress, now: number): number {
  return progress.factors.length > 0 ? Math.max(...progress.factors.map((factor) => factor.at)) : now;
}
