/**
 * The self-service use cases behind `/{pool}/api/self/…` (CONTRACT.md,
 * "Self-service and admin APIs"): a signed-in user lists, adds, renames and
 * removes their passkeys, sets or changes their password, and replaces their
 * recovery codes. Plain functions over the repositories; the routes in
 * ./self-service-routes.ts authenticate the bearer token and hand over a
 * `SelfServiceScope`.
 *
 * Rules kept by every call:
 * - only a token issued to one of the pool's first-party clients manages
 *   credentials: a third-party app the user consented to for `openid email`
 *   must not be able to add or remove the user's passkeys (403);
 * - every write needs an authentication within the pool's
 *   `self_service.recent_auth`, read from the token's `auth_time` (a token
 *   without one is treated as old): 401 login_required, with RFC 9470's
 *   step-up challenge in WWW-Authenticate;
 * - a passkey is removed only while the user keeps a way in: another
 *   passkey, a password the pool accepts, or email codes;
 * - removing a passkey, changing the password and replacing recovery codes
 *   sign the user out everywhere else (src/oidc/sign-out-elsewhere.ts): the
 *   change may answer a stolen credential, whose holder must not stay signed
 *   in. The browser making the change keeps its session; the answer says what
 *   was signed out (`signed_out`);
 * - every write is audited with the user, client, address and user agent.
 */

import type { PoolConfig } from '../config/types.ts';
import { noSuchPasskey, PosternError, passkeyLimit, passkeysBusy, rateLimited } from '../errors.ts';
import {
  beginPasskeyEnrollment,
  finishPasskeyEnrollment,
  takeEnrollmentChallenge,
} from '../factors/passkey/passkey-enrollment.ts';
import { PasskeyRefused } from '../factors/passkey/passkey-sign-in.ts';
import { removalRefused, removePasskey } from '../factors/passkey/remove-passkey.ts';
import { type Argon2Parameters, hashPassword, verifyPassword } from '../factors/password/password-hasher.ts';
import {
  issueFirstRecoveryCodes,
  issueRecoveryCodes,
  poolUsesRecoveryCodes,
} from '../factors/recovery-code/issue-recovery-codes.ts';
import type { Logger } from '../logging/create-logger.ts';
import { type SignedOut, signOutElsewhere } from '../oidc/sign-out-elsewhere.ts';
import { deriveKey } from '../secrets/derive-key.ts';
import { LimitExceededError, UniqueViolationError } from '../storage/errors.ts';
import type { DurableStore, EphemeralStore, Passkey, RateLimiter, User } from '../storage/types.ts';
import { authenticatorName } from '../webauthn/authenticator-names.ts';
import type { ChallengeBinding } from '../webauthn/challenge-store.ts';
import { createPasskeyPolicy, type PasskeyPolicy } from '../webauthn/passkey-policy.ts';

export interface SelfServiceDeps {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  /** The operator secret; the recovery-code key derives from it, as in the login flow. */
  secret: string;
  /** (Optional) Seconds since the epoch. Defaults to the system clock. */
  now?: () => number;
}

/** One authenticated request: the pool, the token's user and client, and where it came from. */
export interface SelfServiceScope {
  pool: PoolConfig;
  /** The token's subject (a user id of this pool). */
  accountId: string;
  clientId: string;
  /** The token's grant: the current browser's, kept when signing out elsewhere. */
  grantId: string;
  /** The token's `auth_time`; undefined when it carries none. */
  authTime?: number;
  ip: string;
  userAgent: string;
  log: Logger;
}

/** `GET /api/self`: the account and which of its sign-in methods the pool lets the user manage. */
export interface AccountSummary {
  email: string;
  password: { enabled: boolean; set: boolean; min_length: number };
  recovery_codes: { enabled: boolean; remaining: number };
  /** Seconds a sign-in stays recent enough for writes. */
  recent_auth: number;
}

/**
 * What a change signed out, as the answer says it: other browsers' sessions,
 * and the apps that lost their sign-in somewhere (distinct clients).
 */
export type SignedOutView = Pick<SignedOut, 'sessions' | 'apps'>;

/** Why a change signs the user out elsewhere, as the audit trail records it. */
type SignOutReason = 'passkey_removed' | 'password_changed' | 'recovery_codes_replaced';

/** A passkey as the API shows it: never the public key or the counter. */
export interface PasskeyView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  aaguid: string;
  /** The authenticator model's name, where the AAGUID is known. */
  authenticator: string | null;
  /** Backed up (synced) right now: the BS flag as last seen. */
  backed_up: boolean;
  /** Not backup-eligible: the key cannot leave its authenticator. */
  device_bound: boolean;
}

/** 401 for a token that is missing, invalid, or whose user is gone (RFC 6750 §3.1). */
export const invalidToken = (detail: string, { missing = false }: { missing?: boolean } = {}) =>
  new PosternError(401, 'invalid_token', 'Sign in again to continue.', {
    detail,
    // Without any token, the challenge carries no error code (RFC 6750 §3.1).
    headers: { 'WWW-Authenticate': missing ? 'Bearer' : 'Bearer error="invalid_token"' },
  });

const loginRequired = (maxAge: number, detail: string) =>
  new PosternError(401, 'login_required', 'For your security, sign in again before changing this.', {
    detail,
    // RFC 9470 §3: the step-up challenge, telling the client how recent a login it needs.
    headers: {
      'WWW-Authenticate': `Bearer error="insufficient_user_authentication", error_description="A more recent authentication is required.", max_age="${maxAge}"`,
    },
  });

const notFirstParty = (clientId: string) =>
  new PosternError(403, 'insufficient_scope', 'This app cannot manage your sign-in methods.', {
    detail: `token of client ${clientId}, which is not first-party`,
    headers: { 'WWW-Authenticate': 'Bearer error="insufficient_scope"' },
  });

const PASSKEY_REJECTED = 'That passkey could not be created. Try again, or use another authenticator.';

/** Wrong current passwords for one account, per the pool's failure window, before changing pauses. */
const CURRENT_PASSWORD_ATTEMPTS = 5;

export function createSelfService(deps: SelfServiceDeps) {
  const { durable, ephemeral } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const recoveryCodeKey = deriveKey(deps.secret, 'recovery-codes');
  const policies = new WeakMap<PoolConfig, PasskeyPolicy>();
  const limiters = new Map<string, RateLimiter>();

  function policyOf(pool: PoolConfig): PasskeyPolicy {
    let policy = policies.get(pool);
    if (!policy) {
      policy = createPasskeyPolicy(pool);
      policies.set(pool, policy);
    }
    return policy;
  }

  function currentPasswordLimiter(pool: PoolConfig): RateLimiter {
    const name = `self_service_password:${pool.id}`;
    let limiter = limiters.get(name);
    if (!limiter) {
      limiter = ephemeral.rateLimiter({
        name,
        points: CURRENT_PASSWORD_ATTEMPTS,
        windowSeconds: pool.authentication.password.failure_window,
      });
      limiters.set(name, limiter);
    }
    return limiter;
  }

  const binding = (scope: SelfServiceScope, userId: string): ChallengeBinding => ({
    poolId: scope.pool.id,
    ceremony: 'registration',
    subject: `user:${userId}`,
  });

  const argon2 = (pool: PoolConfig): Argon2Parameters => {
    const { memory_kib, iterations, parallelism } = pool.authentication.password.argon2;
    return { memoryKib: memory_kib, iterations, parallelism };
  };

  async function audit(
    scope: SelfServiceScope,
    event: string,
    outcome: 'success' | 'failure',
    details: { credentialId?: string | null; detail?: Record<string, unknown> } = {},
  ) {
    await durable.auditEvents.append({
      poolId: scope.pool.id,
      event,
      outcome,
      userId: scope.accountId,
      credentialId: details.credentialId ?? null,
      ip: scope.ip,
      userAgent: scope.userAgent,
      detail: { via: 'self_service', client_id: scope.clientId, ...details.detail },
    });
  }

  /** The token's user, if the token may manage credentials at all. */
  async function userOf(scope: SelfServiceScope): Promise<User> {
    const client = scope.pool.clients.find((candidate) => candidate.client_id === scope.clientId);
    if (!client?.first_party) throw notFirstParty(scope.clientId);
    const user = await durable.users.findById(scope.pool.id, scope.accountId);
    if (!user) throw invalidToken(`token of user ${scope.accountId}, who no longer exists`);
    return user;
  }

  /** The user, for a write: also needs a recent enough authentication. */
  async function writerOf(scope: SelfServiceScope): Promise<User> {
    const user = await userOf(scope);
    const window = scope.pool.self_service.recent_auth;
    if (scope.authTime === undefined) throw loginRequired(window, 'token carries no auth_time');
    const age = now() - scope.authTime;
    if (age > window) throw loginRequired(window, `authenticated ${age} s ago, window ${window} s`);
    return user;
  }

  /** Signs the user out everywhere but this request's browser, and audits it. */
  async function signOutOthers(scope: SelfServiceScope, reason: SignOutReason): Promise<SignedOutView> {
    const signedOut = await signOutElsewhere(
      { durable, ephemeral },
      { poolId: scope.pool.id, accountId: scope.accountId, keep: { grantId: scope.grantId } },
    );
    await audit(scope, 'signed_out_elsewhere', 'success', { detail: { reason, ...signedOut } });
    scope.log.info({ user: scope.accountId, reason, ...signedOut }, 'signed out elsewhere');
    return { sessions: signedOut.sessions, apps: signedOut.apps };
  }

  function view(passkey: Passkey): PasskeyView {
    return {
      id: passkey.id,
      name: passkey.name,
      created_at: passkey.createdAt.toISOString(),
      last_used_at: passkey.lastUsedAt?.toISOString() ?? null,
      aaguid: passkey.aaguid,
      authenticator: authenticatorName(passkey.aaguid) ?? null,
      backed_up: passkey.backupState,
      device_bound: !passkey.backupEligible,
    };
  }

  async function findPasskey(scope: SelfServiceScope, userId: string, id: string): Promise<Passkey> {
    const passkeys = await durable.passkeys.listByUser(scope.pool.id, userId);
    const passkey = passkeys.find((candidate) => candidate.id === id);
    if (!passkey) throw noSuchPasskey();
    return passkey;
  }

  return {
    /** Who the token speaks for and what they can manage here. Reading needs no recent authentication. */
    async summary(scope: SelfServiceScope): Promise<AccountSummary> {
      const user = await userOf(scope);
      const { pool } = scope;
      const [passwordHash, remaining] = await Promise.all([
        durable.users.getPasswordHash(pool.id, user.id),
        durable.recoveryCodes.countUnused(pool.id, user.id),
      ]);
      return {
        email: user.email,
        password: {
          enabled: pool.authentication.first_factor.includes('password'),
          set: passwordHash !== undefined,
          min_length: pool.authentication.password.min_length,
        },
        recovery_codes: { enabled: poolUsesRecoveryCodes(pool.authentication), remaining },
        recent_auth: pool.self_service.recent_auth,
      };
    },

    /** The user's passkeys, oldest first. Reading needs no recent authentication. */
    async listPasskeys(scope: SelfServiceScope): Promise<PasskeyView[]> {
      const user = await userOf(scope);
      const passkeys = await durable.passkeys.listByUser(scope.pool.id, user.id);
      return passkeys.map(view);
    },

    /**
     * Creation options for one more passkey, listing the user's passkeys in
     * excludeCredentials; the challenge is bound to the user.
     * @throws {PosternError} passkey_limit when the user has `max_per_user` passkeys.
     */
    async registerOptions(scope: SelfServiceScope) {
      const user = await writerOf(scope);
      const policy = policyOf(scope.pool);
      const existing = await durable.passkeys.listByUser(scope.pool.id, user.id);
      if (existing.length >= policy.maxPerUser) {
        await audit(scope, 'passkey_registration', 'failure', {
          detail: { reason: `already ${policy.maxPerUser} passkeys (max_per_user)` },
        });
        throw passkeyLimit(policy.maxPerUser);
      }
      const options = await beginPasskeyEnrollment(
        ephemeral,
        { policy, binding: binding(scope, user.id) },
        { webauthnUserId: user.webauthnUserId, email: user.email, name: user.name, existing },
      );
      await audit(scope, 'passkey_registration_options', 'success', {
        detail: { existing: existing.length },
      });
      return options;
    },

    /**
     * Verifies and stores the new passkey. The answer carries `recovery_codes`
     * when this is the user's first second factor in a pool that uses them.
     * @throws {PosternError} passkey_rejected for any refused ceremony; passkey_limit.
     */
    async registerVerify(
      scope: SelfServiceScope,
      { response, name }: { response?: unknown; name?: string },
    ): Promise<PasskeyView & { recovery_codes?: string[] }> {
      // Taken first: whatever refuses this verification, the challenge is spent.
      const challenge = await takeEnrollmentChallenge(ephemeral, binding(scope, scope.accountId));
      const user = await writerOf(scope);
      const policy = policyOf(scope.pool);
      const refuse = async (error: PasskeyRefused): Promise<never> => {
        scope.log.warn(
          { reason: error.reason, credential: error.credentialId },
          'passkey registration refused',
        );
        await audit(scope, 'passkey_registration', 'failure', {
          credentialId: error.credentialId,
          detail: { method: 'passkey', reason: error.reason },
        });
        throw new PosternError(400, 'passkey_rejected', PASSKEY_REJECTED, { detail: error.reason });
      };

      let enrollment: Awaited<ReturnType<typeof finishPasskeyEnrollment>>;
      try {
        enrollment = await finishPasskeyEnrollment({ policy, challenge }, response, {
          ...(name === undefined ? {} : { name }),
          userHandle: user.webauthnUserId,
        });
      } catch (error) {
        if (error instanceof PasskeyRefused) return refuse(error);
        throw error;
      }

      let passkey: Passkey;
      try {
        passkey = await durable.passkeys.create(
          { ...enrollment.passkey, poolId: scope.pool.id, userId: user.id },
          { maxPerUser: policy.maxPerUser },
        );
      } catch (error) {
        if (error instanceof LimitExceededError) {
          await audit(scope, 'passkey_registration', 'failure', {
            credentialId: enrollment.passkey.credentialId,
            detail: { reason: `already ${policy.maxPerUser} passkeys (max_per_user)` },
          });
          throw passkeyLimit(policy.maxPerUser);
        }
        if (error instanceof UniqueViolationError)
          return refuse(
            new PasskeyRefused('credential already registered', {
              credentialId: enrollment.passkey.credentialId,
            }),
          );
        throw error;
      }
      await audit(scope, 'passkey_registration', 'success', {
        credentialId: passkey.credentialId,
        detail: { aaguid: passkey.aaguid, backup_eligible: passkey.backupEligible, reason: 'self_service' },
      });

      // The same rule as the login flow's first enrolment: ten codes, once.
      const recoveryCodes = await issueFirstRecoveryCodes(durable.recoveryCodes, recoveryCodeKey, {
        poolId: scope.pool.id,
        userId: user.id,
        authentication: scope.pool.authentication,
      });
      if (recoveryCodes)
        await audit(scope, 'recovery_codes_issued', 'success', { detail: { count: recoveryCodes.length } });
      return { ...view(passkey), ...(recoveryCodes ? { recovery_codes: recoveryCodes } : {}) };
    },

    /** @throws {PosternError} not_found for a passkey that is not this user's in this pool. */
    async renamePasskey(
      scope: SelfServiceScope,
      id: string,
      { name }: { name: string },
    ): Promise<PasskeyView> {
      const user = await writerOf(scope);
      const passkey = await findPasskey(scope, user.id, id);
      if (!(await durable.passkeys.rename(scope.pool.id, user.id, id, name))) throw noSuchPasskey();
      await audit(scope, 'passkey_renamed', 'success', {
        credentialId: passkey.credentialId,
        detail: { name },
      });
      return view({ ...passkey, name });
    },

    /**
     * Removes a passkey while the user keeps a way in, then signs the user out
     * everywhere else (whoever holds that passkey may be signed in with it).
     * @throws {PosternError} not_found; last_way_in; conflict while another removal runs.
     */
    async deletePasskey(scope: SelfServiceScope, id: string): Promise<{ signed_out: SignedOutView }> {
      const user = await writerOf(scope);
      const removal = await removePasskey({ durable, ephemeral }, { pool: scope.pool, userId: user.id, id });
      if (removal.ok) {
        await audit(scope, 'passkey_removed', 'success', { credentialId: removal.passkey.credentialId });
        return { signed_out: await signOutOthers(scope, 'passkey_removed') };
      }
      if (removal.reason === 'not_found') throw noSuchPasskey();
      if (removal.reason === 'busy') throw passkeysBusy();
      await audit(scope, 'passkey_removed', 'failure', {
        credentialId: removal.passkey.credentialId,
        detail: { reason: removal.reason },
      });
      throw removalRefused(removal.reason);
    },

    /**
     * Sets a password, or changes it (then `current_password` must match),
     * where the pool signs users in with one. A change signs the user out
     * everywhere else (the old password may be known to someone); a first
     * password adds a way in and signs nobody out.
     * @throws {PosternError} invalid_request where passwords are not used or the current one is missing;
     *   invalid_credentials for a wrong current password; weak_password; rate_limited.
     */
    async setPassword(
      scope: SelfServiceScope,
      { password, current_password }: { password: string; current_password?: string },
    ): Promise<{ signed_out: SignedOutView }> {
      const user = await writerOf(scope);
      const { pool } = scope;
      if (!pool.authentication.first_factor.includes('password'))
        throw new PosternError(400, 'invalid_request', 'This service does not use passwords.');

      const { min_length } = pool.authentication.password;
      if ([...password].length < min_length)
        throw new PosternError(
          400,
          'weak_password',
          `Choose a password of at least ${min_length} characters.`,
        );
      if (password.trim().toLowerCase() === user.email)
        throw new PosternError(400, 'weak_password', 'Your password cannot be your email address.');

      const stored = await durable.users.getPasswordHash(pool.id, user.id);
      if (stored !== undefined) {
        if (current_password === undefined)
          throw new PosternError(400, 'invalid_request', 'Enter your current password.');
        // A stolen but recent token must not become a way to guess the password.
        const limiter = currentPasswordLimiter(pool);
        const decision = await limiter.consume(user.id);
        if (!decision.allowed) {
          if (decision.firstRefusal)
            await audit(scope, 'rate_limited', 'failure', { detail: { limit: 'self_service_password' } });
          throw rateLimited(decision.retryAfterSeconds);
        }
        if (!(await verifyPassword(stored, current_password))) {
          await audit(scope, 'password_changed', 'failure', { detail: { reason: 'wrong current password' } });
          throw new PosternError(400, 'invalid_credentials', 'Your current password is not correct.');
        }
        await limiter.reset(user.id);
      }

      await durable.users.setPasswordHash(pool.id, user.id, await hashPassword(password, argon2(pool)));
      await audit(scope, 'password_changed', 'success', { detail: { first_password: stored === undefined } });
      if (stored === undefined) return { signed_out: { sessions: 0, apps: 0 } };
      return { signed_out: await signOutOthers(scope, 'password_changed') };
    },

    /**
     * Ten new recovery codes in place of the old set (which stops working), to
     * be shown once; signs the user out everywhere else (an old code may have
     * been used, or be known to someone).
     * @throws {PosternError} invalid_request where the pool does not use recovery codes.
     */
    async replaceRecoveryCodes(
      scope: SelfServiceScope,
    ): Promise<{ recovery_codes: string[]; signed_out: SignedOutView }> {
      const user = await writerOf(scope);
      if (!poolUsesRecoveryCodes(scope.pool.authentication))
        throw new PosternError(400, 'invalid_request', 'This service does not use recovery codes.');
      const codes = await issueRecoveryCodes(durable.recoveryCodes, recoveryCodeKey, {
        poolId: scope.pool.id,
        userId: user.id,
      });
      await audit(scope, 'recovery_codes_issued', 'success', {
        detail: { count: codes.length, replaced: true },
      });
      return { recovery_codes: codes, signed_out: await signOutOthers(scope, 'recovery_codes_replaced') };
    },
  };
}

export type SelfService = ReturnType<typeof createSelfService>;
