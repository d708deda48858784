/**
 * One interaction call, as one unit of work: load what this login achieved
 * (its progress) once, load the user and what they enrolled once (one
 * query, remembered for the call), decide the step once on what was loaded
 * and once on the outcome, write progress only when it changed, and write
 * the call's audit rows together when it ends (`close`).
 *
 *   open ─► require(step fits?) ─► the factor acts ─► advance(next progress) ─► close
 *
 * The context holds no oidc-provider object: the interaction is plain data
 * and the provider is reached through the oidc port (./oidc-port.ts).
 */
import { type AuditTrail, createAuditTrail } from '../accounts/audit-trail.ts';
import { passkeysInUse } from '../accounts/passkey-policies.ts';
import type { PoolConfig } from '../config/types.ts';
import { accountFactsOf } from '../factors/factor.ts';
import { refusal } from '../factors/refusal-codes.ts';
import type { Logger } from '../logging/create-logger.ts';
import { type AcrRequestSources, acrClaimFor, requestedAcrValues, requiredAcr } from '../oidc/acr.ts';
import {
  accountLabelFor,
  narrowFactors,
  passkeysAllowedFor,
  tightenFlow,
} from '../organizations/org-policy.ts';
import type { Account, Organization, RateLimitRule } from '../storage/types.ts';
import type { ChallengeBinding } from '../webauthn/challenge-store.ts';
import { assessAssurance } from './assurance.ts';
import { type KnownDeviceCookie, knownDeviceOf, rememberDevice } from './known-devices.ts';
import { notNow } from './login-errors.ts';
import type { LoginKit } from './login-kit.ts';
import { type FlowPolicy, nextStep, type Step } from './next-step.ts';
import type { InteractionView, OidcPort } from './oidc-port.ts';
import { type Answer, type AnswerExtras, presentStep } from './present-step.ts';
import { loadProgressRecord, type Progress, type ProgressRecord, saveProgress } from './progress.ts';
import { limitRule, RATE_LIMITS } from './rate-limits.ts';

/** One interaction of one pool, as a request presents it. */
export interface LoginScope {
  pool: PoolConfig;
  interaction: InteractionView;
  oidc: OidcPort;
  ip: string;
  userAgent: string;
  log: Logger;
  /** This browser's known-device cookie for the pool (./known-devices.ts). */
  knownDevice: KnownDeviceCookie;
  /**
   * (Optional) The interaction's progress, its read begun before the
   * interaction was looked up (the uid is in the URL), so both reads share
   * one round trip to Redis. Read here when absent.
   */
  storedProgress?: Promise<ProgressRecord>;
}

export class LoginContext {
  readonly kit: LoginKit;
  readonly scope: LoginScope;
  readonly #trail: AuditTrail;
  /** The progress as stored when the call began (its JSON), to write only what changed. */
  readonly #stored: string | undefined;
  readonly progress: Progress;
  readonly #accounts = new Map<string, Promise<Account | undefined>>();
  readonly #organizations = new Map<string, Promise<Organization | undefined>>();
  #step: Promise<Step> | undefined;

  private constructor(kit: LoginKit, scope: LoginScope, stored: string | undefined, progress: Progress) {
    this.kit = kit;
    this.scope = scope;
    this.#stored = stored;
    this.progress = progress;
    this.#trail = createAuditTrail(kit.deps.durable.auditEvents, {
      poolId: scope.pool.id,
      ip: scope.ip,
      userAgent: scope.userAgent,
      detail: { client_id: String(scope.interaction.params.client_id), interaction: scope.interaction.uid },
    });
  }

  static async open(kit: LoginKit, scope: LoginScope): Promise<LoginContext> {
    const { raw, progress } = await (scope.storedProgress ??
      loadProgressRecord(kit.deps.ephemeral, scope.pool.id, scope.interaction.uid));
    return new LoginContext(kit, scope, raw, progress);
  }

  /** Writes the call's audit rows, whatever its outcome. */
  async close(): Promise<void> {
    await this.#trail.flush();
  }

  get pool(): PoolConfig {
    return this.scope.pool;
  }

  get log(): Logger {
    return this.scope.log;
  }

  now(): number {
    return Math.floor(this.kit.clock() / 1000);
  }

  audit(
    event: string,
    outcome: 'success' | 'failure',
    details: { userId?: string | null; credentialId?: string | null; detail?: Record<string, unknown> } = {},
  ): void {
    this.#trail.record({ event, outcome, ...details });
  }

  // ------------------------------------------------------------------ the account

  /** The user (and what they enrolled) this login is about: one query per user and call. */
  account(userId = this.progress.userId ?? this.progress.sessionUserId): Promise<Account | undefined> {
    if (!userId) return Promise.resolve(undefined);
    let account = this.#accounts.get(userId);
    if (!account) {
      account = this.kit.deps.durable.users.findAccount(this.pool.id, userId);
      this.#accounts.set(userId, account);
    }
    return account;
  }

  /** An account a factor loaded itself (a passkey's owner): not loaded again. */
  knowAccount(account: Account): void {
    this.#accounts.set(account.user.id, Promise.resolve(account));
  }

  /** After a write that changes what the user enrolled: the next decision reloads it. */
  accountChanged(userId: string): void {
    this.#accounts.delete(userId);
  }

  // ------------------------------------------------------------------ the request

  get client() {
    const id = String(this.scope.interaction.params.client_id);
    const config = this.pool.clients.find((candidate) => candidate.client_id === id);
    return { id, name: config?.client_name ?? id, firstParty: config?.first_party ?? false, config };
  }

  /** Where this request names the authentication context it wants. */
  get acrRequest(): AcrRequestSources {
    const { params } = this.scope.interaction;
    return {
      acrValues: params.acr_values,
      claims: params.claims,
      defaultAcrValues: this.client.config?.default_acr_values,
    };
  }

  /** The acr this request demands (phr or phrh), if any: only a passkey sign-in meets it. */
  get requiredAcr() {
    return requiredAcr(this.acrRequest);
  }

  binding(ceremony: ChallengeBinding['ceremony']): ChallengeBinding {
    return { poolId: this.pool.id, ceremony, subject: `interaction:${this.scope.interaction.uid}` };
  }

  /** Seconds the interaction has left: what progress may live. */
  ttl(): number {
    return Math.max(1, this.scope.interaction.exp - this.now());
  }

  /** The device id this browser holds for the account, when it signed in to it before. */
  knownDeviceOf(email: string): string | undefined {
    return knownDeviceOf(this.kit.keys.knownDevices, this.scope.knownDevice.read(), {
      poolId: this.pool.id,
      email,
    });
  }

  // ------------------------------------------------------------------ the organization

  /**
   * The organization the request names, by id: its `organization` parameter
   * or the client's binding, both resolved when the request was authorized
   * (src/oidc/organization-parameter.ts).
   */
  get requestedOrganizationId(): string | undefined {
    const id = this.scope.interaction.params.organization;
    return typeof id === 'string' && id !== '' ? id : undefined;
  }

  #organizationById(id: string): Promise<Organization | undefined> {
    let organization = this.#organizations.get(id);
    if (!organization) {
      organization = this.kit.deps.durable.organizations.find(this.pool.id, id);
      this.#organizations.set(id, organization);
    }
    return organization;
  }

  /**
   * The organization of a login at `progress`, and what is still open about
   * it: the request's (for its members only; an organization deleted since
   * turns everyone away); else, once a factor proved the user, the one they
   * picked, their only one, or a pick among several.
   */
  async organizationOf(
    progress: Progress,
    account: Account | undefined,
  ): Promise<{ organization?: Organization; gate?: FlowPolicy['organization'] }> {
    const proven = progress.userId && account?.user.id === progress.userId ? account : undefined;
    const requested = this.requestedOrganizationId;
    if (requested) {
      const organization = await this.#organizationById(requested);
      const outsider =
        !organization ||
        (progress.signup && !progress.userId) ||
        (proven && !proven.organizations.some((candidate) => candidate.id === requested));
      return outsider ? { gate: { outsider: true } } : { organization };
    }
    if (!proven) {
      // Signing in again after the organization refused a first factor.
      const chosen = progress.organizationId && (await this.#organizationById(progress.organizationId));
      return chosen ? { organization: chosen } : {};
    }
    const { organizations } = proven;
    if (progress.organizationId) {
      const organization = organizations.find((candidate) => candidate.id === progress.organizationId);
      return organization ? { organization } : { gate: { outsider: true } };
    }
    if (organizations.length === 1) return { organization: organizations[0]! };
    if (organizations.length > 1)
      return { gate: { pick: organizations.map(({ id, name }) => ({ id, name })) } };
    return {};
  }

  /**
   * Whether a consent given in this login needs a grant of its own: the
   * client's existing grant was made for another organization (or for one,
   * where this login has none), whose tokens must keep naming it.
   */
  async needsFreshGrant(): Promise<boolean> {
    const { grantId, prompt } = this.scope.interaction;
    if (!grantId || prompt.name === 'consent') return false;
    const account = await this.account(this.progress.userId);
    const [{ organization }, recorded] = await Promise.all([
      this.organizationOf(this.progress, account),
      this.kit.deps.durable.organizations.organizationOfGrant(this.pool.id, grantId),
    ]);
    return recorded?.id !== organization?.id;
  }

  /** The name a passkey made in this login is stored under beside the email (WebAuthn user.name). */
  async passkeyLabel(): Promise<string> {
    const account = await this.account(this.progress.userId);
    const proven = this.progress.userId ? account : undefined;
    const { organization } = await this.organizationOf(this.progress, proven);
    return accountLabelFor(this.kit.policyOf(this.pool).accountLabel, proven, organization);
  }

  /**
   * Fixes the organization in progress once it is known, and where it does
   * not accept the first factor the user proved, starts the sign-in again
   * with one it does (same email, nothing proven).
   */
  async #settleOrganization(next: Progress): Promise<Progress> {
    if (!next.userId) return next;
    const account = await this.account(next.userId);
    const { organization } = await this.organizationOf(next, account);
    if (!organization || !account) return next;
    const requested = this.requestedOrganizationId !== undefined;
    const [first] = next.factors;
    const flow = this.#flowOf(account, organization);
    // A step-up signs in with a passkey whatever the first factors (where the organization accepts one).
    const stepUpPasskey = flow.requiredAcr && flow.passkeyStepUp !== false && first?.method === 'passkey';
    if (first && !stepUpPasskey && !flow.firstFactors.includes(first.method)) {
      this.audit('sign_in', 'failure', {
        userId: account.user.id,
        detail: {
          ...refusal('organization_factor', `${first.method} is not a first factor of ${organization.slug}`),
          organization_id: organization.id,
        },
      });
      const { grantId, enrollDeclined } = next;
      return {
        email: account.user.email,
        factors: [],
        ...(requested ? {} : { organizationId: organization.id }),
        organizationRefused: first.method,
        ...(grantId ? { grantId } : {}),
        ...(enrollDeclined ? { enrollDeclined } : {}),
      };
    }
    if (requested || next.organizationId === organization.id) return next;
    return { ...next, organizationId: organization.id };
  }

  // ------------------------------------------------------------------ limits

  /** Counts one attempt against a limit of RATE_LIMITS. @throws {PosternError} 429 with Retry-After. */
  limit(name: keyof typeof RATE_LIMITS, key: string): Promise<void> {
    return this.limitWith(name, RATE_LIMITS[name], key);
  }

  /** Counts one attempt against a named rule; the moment it trips is audited, once per window. */
  limitWith(name: string, rule: Omit<RateLimitRule, 'name'>, key: string): Promise<void> {
    return this.kit.limits.enforce({ name, ...rule }, key, () => this.#tripped(name, rule));
  }

  /** For limits that count failures only: refuses while none is left, without counting this one. */
  checkLimit(name: keyof typeof RATE_LIMITS, key: string): Promise<void> {
    return this.kit.limits.check(limitRule(name), key);
  }

  /** Counts one failure against a limit `checkLimit` guards; audits the one that uses it up. */
  countFailure(name: keyof typeof RATE_LIMITS, key: string): Promise<void> {
    const rule = RATE_LIMITS[name];
    return this.kit.limits.countFailure({ name, ...rule }, key, () => this.#tripped(name, rule));
  }

  resetLimit(name: string, rule: Omit<RateLimitRule, 'name'>, key: string): Promise<void> {
    return this.kit.limits.reset({ name, ...rule }, key);
  }

  #tripped(name: string, rule: Omit<RateLimitRule, 'name'>) {
    this.log.warn({ limit: name }, 'rate limit reached');
    this.audit('rate_limited', 'failure', { detail: { limit: name, window_seconds: rule.windowSeconds } });
  }

  // ------------------------------------------------------------------ steps

  /** The step this call found the login at (decided once). */
  step(): Promise<Step> {
    this.#step ??= this.decide(this.progress);
    return this.#step;
  }

  /** The current step, when `allowed` accepts it. @throws {PosternError} 400 when the call does not fit it. */
  async require(allowed: (step: Step) => boolean, what: string): Promise<Step> {
    const step = await this.step();
    if (!allowed(step)) throw notNow(what);
    return step;
  }

  /** What the interaction needs before it can finish, given `progress`: the step, or done. */
  async decide(progress: Progress): Promise<Step> {
    // A first-party client never shows a consent screen, even for prompt=consent
    // (which offline_access needs): its grant is widened by the provider (oidc/).
    if (this.scope.interaction.prompt.name === 'consent')
      return this.client.firstParty ? { step: 'done' } : { step: 'consent' };
    // Before any factor, a step-up knows its user from the session.
    const account = await this.account(progress.userId ?? progress.sessionUserId);
    const { organization, gate } = await this.organizationOf(progress, account);
    const policy = this.#flowOf(account, organization);
    return nextStep(
      gate ? { ...policy, organization: gate } : policy,
      progress,
      account && accountFactsOf(account),
      {
        needsConsent: !this.client.firstParty && !progress.grantId,
      },
    );
  }

  /** The pool's policy for this request, as the login's organization (if any) tightens it. */
  #flowOf(account: Account | undefined, organization?: Organization): FlowPolicy {
    const pool = this.#poolFlowOf(account);
    return organization ? tightenFlow(pool, organization) : pool;
  }

  #poolFlowOf(account: Account | undefined): FlowPolicy {
    const { enrollment, authentication, passkeys } = this.pool;
    const lastPrompt = account?.user.enrollPromptedAt?.getTime();
    const required = this.requiredAcr;
    const inUse = passkeysInUse(this.pool);
    return {
      mode: passkeys.mode,
      passkeys: inUse,
      firstFactors: narrowFactors(authentication.first_factor, inUse),
      secondFactors: narrowFactors(authentication.second_factor, inUse),
      secondFactorRequired: authentication.second_factor_required,
      passkeyCountsAsTwoFactors: authentication.passkey_counts_as_two_factors,
      passkeySupersedesTotp: authentication.passkey_supersedes_totp,
      // Creating one also answers to every organization of the user (as outside a login).
      ...(account && !passkeysAllowedFor(this.pool, account) ? { enrollPasskeys: false } : {}),
      offerPasskey:
        inUse &&
        enrollment.offer_passkey &&
        (lastPrompt === undefined || this.kit.clock() - lastPrompt >= enrollment.ask_again_after * 1000),
      ...(required ? { requiredAcr: required } : {}),
    };
  }

  /** Moves the login to `next`: answers with its step (saving progress if it changed), or finishes. */
  async advance(proposed: Progress, extras: AnswerExtras = {}): Promise<Answer> {
    const next = await this.#settleOrganization(proposed);
    const step = await this.decide(next);
    if (step.step === 'done') return { ...(await this.#finish(next)), ...extras };
    if (step.step === 'unmet' && step.reason === 'second_factor') {
      this.audit('sign_in', 'failure', {
        userId: next.userId,
        detail: refusal('second_factor_unattainable'),
      });
      return this.deny(
        'A second factor is required, and this account has none that can be used here. Ask an administrator for help.',
        'unmet_authentication_requirements',
      );
    }
    if (step.step === 'unmet') {
      this.audit('sign_in', 'failure', {
        userId: next.userId ?? next.sessionUserId,
        detail: refusal('acr_unattainable', 'the requested acr needs a passkey this user cannot create here'),
      });
      return this.deny(
        'The app asks for a passkey sign-in, and this account has no passkey nor a way to create one here.',
        'unmet_authentication_requirements',
      );
    }
    if (step.step === 'not_member') {
      const organizationId = this.requestedOrganizationId ?? next.organizationId;
      const named = organizationId ? await this.#organizationById(organizationId) : undefined;
      this.audit('sign_in', 'failure', {
        userId: next.userId,
        detail: { ...refusal('not_member'), organization_id: organizationId ?? null },
      });
      return this.deny(
        named
          ? `This account is not a member of ${named.name}. Ask its administrator to add you.`
          : 'The organization this sign-in is for does not exist any more.',
      );
    }
    let saved = next;
    if (step.step === 'enroll' && step.reason === 'offer' && !next.offerShown) {
      this.kit.deps.metrics.passkeyOffers.inc({ pool: this.pool.id, outcome: 'shown' });
      saved = { ...next, offerShown: true };
    }
    await this.save(saved);
    const recovery = step.step === 'enroll' && step.reason === 'recovery' && saved.userId;
    const { organization } = await this.organizationOf(saved, await this.account(saved.userId));
    const answer = presentStep(step, saved, {
      ...(organization ? { organization } : {}),
      pool: this.pool,
      client: { id: this.client.id, name: this.client.name },
      scope: String(this.scope.interaction.params.scope ?? ''),
      stepUp: this.requiredAcr !== undefined,
      ...(recovery
        ? { passkeys: await this.kit.deps.durable.passkeys.listByUser(this.pool.id, saved.userId!) }
        : {}),
    });
    return { ...answer, ...extras };
  }

  /** Saves progress, when it differs from what the call loaded. */
  async save(progress: Progress): Promise<void> {
    const raw = JSON.stringify(progress);
    if (raw === (this.#stored ?? JSON.stringify({ factors: [] }))) return;
    await saveProgress(this.kit.deps.ephemeral, this.pool.id, this.scope.interaction.uid, raw, this.ttl());
  }

  /** Ends the interaction with an OAuth error for the client. */
  async deny(
    description: string,
    error: 'access_denied' | 'unmet_authentication_requirements' = 'access_denied',
  ): Promise<Answer> {
    return { redirect_to: await this.scope.oidc.deny(error, description) };
  }

  /** The consent that goes with finishing: the grant given here, or implied for a first-party client. */
  #consentOf(progress: Progress) {
    if (progress.grantId) return { grantId: progress.grantId };
    return this.client.firstParty ? { implied: true as const } : undefined;
  }

  async #finish(progress: Progress): Promise<Answer> {
    const { oidc } = this.scope;
    // A consent answered for the user's session (no login in this interaction): first-party only.
    if (this.scope.interaction.prompt.name === 'consent')
      return { redirect_to: await oidc.finishConsent(this.#consentOf(progress)) };
    const userId = progress.userId;
    if (!userId) throw new Error('finishing a login without a user');
    const { amr, acr: performed } = assessAssurance(progress.factors);
    const acr = acrClaimFor(performed, requestedAcrValues(this.acrRequest));
    // auth_time is when the user last proved something, not when they left an offer or consent step.
    const ts =
      progress.factors.length > 0 ? Math.max(...progress.factors.map((factor) => factor.at)) : this.now();
    const { organization } = await this.organizationOf(progress, await this.account(userId));
    const redirectTo = await oidc.finishLogin(
      { accountId: userId, amr, acr, ts, ...(organization ? { organizationId: organization.id } : {}) },
      this.#consentOf(progress),
    );
    // Progress is not deleted: it expires with the interaction, which the provider ends on resume.
    const email = progress.email ?? progress.signup?.email;
    if (email) {
      const known = this.scope.knownDevice.read();
      this.scope.knownDevice.write(
        rememberDevice(this.kit.keys.knownDevices, known, { poolId: this.pool.id, email }),
      );
    }
    this.audit('sign_in', 'success', {
      userId,
      detail: {
        amr,
        acr,
        performed_acr: performed,
        methods: progress.factors.map((factor) => factor.method),
        ...(organization ? { organization_id: organization.id } : {}),
      },
    });
    this.log.info({ user: userId, amr, acr }, 'sign-in complete');
    return { redirect_to: redirectTo };
  }
}
