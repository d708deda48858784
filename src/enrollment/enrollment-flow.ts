/**
 * What the enrolment page (`/{pool}/enroll/{token}`) does for the user an
 * operator invited: prove the email with a one-time code mailed to it
 * (SecureAuth's OTP before a passkey is added), then create a passkey for
 * the account in the pool's mode (smart: discoverable, as smart pools
 * register; classic: as classic pools do). The link is redeemed with the
 * new passkey in one transaction: it works once.
 *
 * Everything is bound to the link and to the browser that opened it (a
 * random cookie, `browser`): the proof of the email, the code and the
 * ceremony's challenge. A browser that has the link but did not enter the
 * code can create nothing, and the challenge is taken before any other check
 * of a verification, so every refused one spends it.
 */
import { randomBytes } from 'node:crypto';
import type { AuditTrail } from '../accounts/audit-trail.ts';
import type { Limits } from '../accounts/limits.ts';
import { passkeysInUse, policyOf } from '../accounts/passkey-policies.ts';
import { type PasskeyView, toPasskeyView } from '../accounts/passkey-view.ts';
import type { PoolConfig } from '../config/types.ts';
import type { Mailer } from '../email/mailer.ts';
import { assertPasskeysInUse, errorOf, passkeyLimit } from '../errors.ts';
import { CODE_MESSAGES, codeRefused } from '../factors/email-code/email-code-calls.ts';
import { CODE_TTL_SECONDS, issueCode, redeemCode } from '../factors/email-code/email-code-store.ts';
import { addPasskey } from '../factors/passkey/add-passkey.ts';
import { beginPasskeyEnrollment, takeEnrollmentChallenge } from '../factors/passkey/passkey-enrollment.ts';
import { refusal } from '../factors/refusal-codes.ts';
import { limitRule as rule } from '../interactions/rate-limits.ts';
import type { Logger } from '../logging/create-logger.ts';
import { accountLabelFor, passkeysAllowedFor } from '../organizations/org-policy.ts';
import type { DurableStore, EnrollmentLink, EphemeralStore, User } from '../storage/types.ts';
import type { ChallengeBinding } from '../webauthn/challenge-store.ts';
import { LINK_TOKEN, tokenHashOf } from './enrollment-links.ts';

/** How long a proven email lets this browser create the passkey. */
export const PROOF_SECONDS = 15 * 60;

/** Codes mailed for one link, whatever the browser (the server-wide daily cap per email applies too). */
export const LINK_CODE_LIMIT = { name: 'enroll_code_send_link', points: 5, windowSeconds: 15 * 60 } as const;

/** Wrong codes for one link in a day: each code allows 5 tries, and a new code resets them. */
export const LINK_WRONG_CODES = {
  name: 'enroll_code_wrong_link',
  points: 10,
  windowSeconds: 24 * 60 * 60,
} as const;

/** A fresh value for the enrolment cookie: 16 random bytes, base64url. */
export const newBrowserId = () => randomBytes(16).toString('base64url');
export const BROWSER_ID = /^[A-Za-z0-9_-]{22}$/;

/** `ada@example.com` as `a••@example.com`: the page names the account before the email is proven. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return `${email.slice(0, 1)}••${email.slice(at)}`;
}

/** One request of the enrolment page, as the routes know it. */
export interface EnrollmentRequest {
  pool: PoolConfig;
  /** The token from the link's URL. */
  token: string;
  /** This browser's enrolment cookie (random), to which the proof and ceremony are bound. */
  browser: string;
  ip: string;
  userAgent: string;
  log: Logger;
}

export interface EnrollmentScope extends EnrollmentRequest {
  link: EnrollmentLink;
  user: User;
  /** What the new passkey is for beside the email, in authenticators' pickers (the user's organization, or the pool). */
  passkeyLabel: string;
  audit: AuditTrail;
}

/** What this browser has done with the link. */
interface Progress {
  codeSent?: boolean;
  /** Milliseconds since the epoch when the email was proven here. */
  provenAt?: number;
}

export interface EnrollmentState {
  email: string;
  step: 'prove_email' | 'create_passkey';
  code_sent: boolean;
}

export interface EnrollmentDeps {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  limits: Limits;
  mailer: Mailer;
  /** The key recovery codes are hashed with (the login flow's). */
  recoveryCodeKey: Buffer;
  /** Milliseconds since the epoch. */
  clock: () => number;
}

const LINK_REFUSALS = {
  not_found: {
    status: 404,
    description:
      'This link is not valid. It may have been replaced by a newer one: use the newest link you received, or ask for a new one.',
  },
  used: {
    status: 410,
    description: 'This link was already used to create a passkey. Ask for a new one if you need another.',
  },
  expired: { status: 410, description: 'This link has expired. Ask for a new one.' },
} as const;

/** 404 for a link that is unknown or replaced, 410 for one used or expired. */
export function linkRefused(reason: keyof typeof LINK_REFUSALS) {
  const { status, description } = LINK_REFUSALS[reason];
  const error = errorOf('enrollment_link_invalid', { description, detail: reason });
  return Object.assign(error, { status });
}

export function createEnrollmentFlow(deps: EnrollmentDeps) {
  const { durable, ephemeral, limits, mailer, clock } = deps;

  const subjectOf = (scope: EnrollmentScope, browser = scope.browser) =>
    `enroll:${scope.link.tokenHash}:${browser}`;
  const progressKey = (scope: EnrollmentScope, browser = scope.browser) =>
    `enroll:${scope.pool.id}:${subjectOf(scope, browser)}`;
  const binding = (scope: EnrollmentScope): ChallengeBinding => ({
    poolId: scope.pool.id,
    ceremony: 'registration',
    subject: subjectOf(scope),
  });

  async function progressOf(scope: EnrollmentScope): Promise<Progress> {
    const raw = await ephemeral.get(progressKey(scope));
    return raw ? (JSON.parse(raw) as Progress) : {};
  }
  const proven = (progress: Progress) =>
    progress.provenAt !== undefined && clock() - progress.provenAt < PROOF_SECONDS * 1000;

  async function requireProof(scope: EnrollmentScope) {
    if (!proven(await progressOf(scope))) throw errorOf('email_not_proven');
  }

  /**
   * The usable link behind `token`, with its user.
   * @throws {PosternError} enrollment_link_invalid (404 unknown or replaced, 410 used or expired).
   */
  async function linkOf(
    pool: PoolConfig,
    token: string,
  ): Promise<{ link: EnrollmentLink; user: User; passkeyLabel: string }> {
    if (!LINK_TOKEN.test(token)) throw linkRefused('not_found');
    // A link issued before the pool switched passkeys off: nothing to enrol, and no code to mail.
    assertPasskeysInUse(passkeysInUse(pool), 'an enrolment link in a pool without passkeys');
    const link = await durable.enrollmentLinks.find(pool.id, tokenHashOf(token));
    if (!link) throw linkRefused('not_found');
    if (link.usedAt) throw linkRefused('used');
    if (link.expiresAt.getTime() <= clock()) throw linkRefused('expired');
    const account = await durable.users.findAccount(pool.id, link.userId);
    if (!account) throw linkRefused('not_found');
    // Nor for a user who joined an organization with passkey login off since it was issued.
    assertPasskeysInUse(
      passkeysAllowedFor(pool, account),
      'an enrolment link for a user who may not register passkeys',
    );
    return { link, user: account.user, passkeyLabel: accountLabelFor(policyOf(pool).accountLabel, account) };
  }

  async function state(scope: EnrollmentScope): Promise<EnrollmentState> {
    const progress = await progressOf(scope);
    const isProven = proven(progress);
    return {
      email: isProven ? scope.user.email : maskEmail(scope.user.email),
      step: isProven ? 'create_passkey' : 'prove_email',
      code_sent: progress.codeSent === true,
    };
  }

  return {
    state,

    linkOf,

    /** The scope of one request on a usable link. @throws {PosternError} as `linkOf`. */
    async open(request: EnrollmentRequest, audit: AuditTrail): Promise<EnrollmentScope> {
      return { ...request, ...(await linkOf(request.pool, request.token)), audit };
    },

    /** Mails a code to the user's email. @throws {PosternError} 429 past the per-address or per-link limit. */
    async sendCode(scope: EnrollmentScope): Promise<EnrollmentState> {
      const { email } = scope.user;
      // The address first: a request refused there spends neither the link's nor the email's budget.
      await limits.enforce(rule('email_code_send_ip'), scope.ip);
      await limits.enforce(LINK_CODE_LIMIT, scope.link.tokenHash);
      await limits.enforce(rule('email_code_send_daily'), email);
      const code = await issueCode(ephemeral, {
        poolId: scope.pool.id,
        uid: subjectOf(scope),
        email,
        now: clock(),
      });
      const message = CODE_MESSAGES.verify(scope.pool.display_name, code);
      mailer
        .send({ to: email, ...message, code })
        .catch((error: unknown) => scope.log.error({ err: error }, 'sending the enrolment code failed'));
      const progress = { ...(await progressOf(scope)), codeSent: true };
      await ephemeral.set(
        progressKey(scope),
        JSON.stringify(progress),
        Math.max(CODE_TTL_SECONDS, PROOF_SECONDS),
      );
      scope.audit.record({ event: 'enrollment_code_sent', outcome: 'success', userId: scope.user.id });
      return state(scope);
    },

    /**
     * Checks the code; once it matches, the email is proven for this browser,
     * under a new cookie value (`browser`, for the route to set): a cookie
     * planted before the proof does not share it.
     * @throws {PosternError} invalid_code; code_locked after too many tries; 429.
     */
    async verifyCode(
      scope: EnrollmentScope,
      { code }: { code: string },
    ): Promise<{ state: EnrollmentState; browser: string }> {
      const wrongForAccount = `${scope.pool.id}:${scope.user.email}`;
      await limits.enforce(rule('email_code_verify_ip'), scope.ip);
      await limits.check(LINK_WRONG_CODES, scope.link.tokenHash);
      await limits.check(rule('email_code_wrong_daily'), wrongForAccount);
      const check = await redeemCode(ephemeral, {
        poolId: scope.pool.id,
        uid: subjectOf(scope),
        code,
        now: clock(),
      });
      if (!check.ok || check.email !== scope.user.email) {
        const reason = check.ok ? 'wrong_code' : check.reason;
        scope.audit.record({
          event: 'email_proven',
          outcome: 'failure',
          userId: scope.user.id,
          detail: { method: 'email_otp', ...refusal(reason) },
        });
        if (reason === 'wrong_code') {
          await limits.countFailure(LINK_WRONG_CODES, scope.link.tokenHash);
          await limits.countFailure(rule('email_code_wrong_daily'), wrongForAccount);
        }
        throw codeRefused(reason);
      }
      const browser = newBrowserId();
      await ephemeral.set(progressKey(scope, browser), JSON.stringify({ provenAt: clock() }), PROOF_SECONDS);
      await ephemeral.delete(progressKey(scope));
      scope.audit.record({ event: 'email_proven', outcome: 'success', userId: scope.user.id });
      return { state: await state({ ...scope, browser }), browser };
    },

    /**
     * Creation options for the user's new passkey, excluding the ones they have.
     * @throws {PosternError} email_not_proven; passkey_limit.
     */
    async passkeyOptions(scope: EnrollmentScope) {
      await requireProof(scope);
      const policy = policyOf(scope.pool);
      const existing = await durable.passkeys.listByUser(scope.pool.id, scope.user.id);
      if (existing.length >= policy.maxPerUser) {
        scope.audit.record({
          event: 'passkey_registration',
          outcome: 'failure',
          userId: scope.user.id,
          detail: refusal('passkey_limit', `already ${policy.maxPerUser} passkeys (max_per_user)`),
        });
        throw passkeyLimit(policy.maxPerUser);
      }
      const { user } = scope;
      return beginPasskeyEnrollment(
        ephemeral,
        { policy, binding: binding(scope) },
        {
          webauthnUserId: user.webauthnUserId,
          email: user.email,
          name: user.name,
          existing,
          label: scope.passkeyLabel,
        },
        { now: clock() },
      );
    },

    /**
     * Verifies the new passkey and redeems the link with it; `readBody`
     * reads and guards the request's body, once the challenge is taken. The
     * answer carries `recovery_codes` when this is the user's first second
     * factor in a pool that uses them.
     * @throws {PosternError} passkey_rejected; email_not_proven; passkey_limit; enrollment_link_invalid.
     */
    async passkeyVerify(
      scope: EnrollmentScope,
      readBody: () => Promise<{ response?: unknown; name?: string }>,
    ): Promise<{ passkey: PasskeyView; recovery_codes?: string[] }> {
      // Taken first: whatever refuses this verification, the challenge is spent,
      // a body refused for its shape included (it is read only now).
      const challenge = await takeEnrollmentChallenge(ephemeral, binding(scope), clock());
      const { response, name } = await readBody();
      await requireProof(scope);
      const policy = policyOf(scope.pool);
      const { passkey, recoveryCodes } = await addPasskey(
        { recoveryCodes: durable.recoveryCodes, recoveryCodeKey: deps.recoveryCodeKey },
        {
          policy,
          challenge,
          response,
          ...(name === undefined ? {} : { name }),
          user: scope.user,
          poolId: scope.pool.id,
          authentication: scope.pool.authentication,
          audit: scope.audit,
          log: scope.log,
          reason: 'enrollment_link',
        },
        async (verified) => {
          const redeemed = await durable.enrollmentLinks.redeem(scope.pool.id, scope.link.tokenHash, {
            now: new Date(clock()),
            passkey: verified,
            maxPerUser: policy.maxPerUser,
            ...(policy.maxPerPool === undefined ? {} : { maxPerPool: policy.maxPerPool }),
          });
          if (!redeemed.ok) throw linkRefused(redeemed.reason);
          return redeemed.passkey;
        },
      );
      await ephemeral.delete(progressKey(scope));
      return { passkey: toPasskeyView(passkey), ...(recoveryCodes ? { recovery_codes: recoveryCodes } : {}) };
    },
  };
}

export type EnrollmentFlow = ReturnType<typeof createEnrollmentFlow>;
