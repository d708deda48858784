/**
 * What every self-service use case shares: the scope of one authenticated
 * request, the stores and clock they run on, and the guards that decide
 * whether the request's token may read or change the user's sign-in methods.
 *
 * - only a token issued to one of the pool's first-party clients manages
 *   credentials: a third-party app the user consented to for `openid email`
 *   must not be able to add or remove the user's passkeys (403);
 * - every write needs an authentication within the pool's
 *   `self_service.recent_auth`, read from the token's `auth_time` (a token
 *   without one is treated as old): 401 login_required, with RFC 9470's
 *   step-up challenge in WWW-Authenticate;
 * - a change that may answer a stolen credential signs the user out
 *   everywhere else (src/oidc/sign-out-elsewhere.ts): its holder must not stay
 *   signed in. The browser making the change keeps its session.
 */
import type { AuditTrail } from '../accounts/audit-trail.ts';
import type { Limits } from '../accounts/limits.ts';
import type { PoolConfig } from '../config/types.ts';
import { errorOf, invalidToken } from '../errors.ts';
import type { Logger } from '../logging/create-logger.ts';
import { type SignedOut, signOutElsewhere } from '../oidc/sign-out-elsewhere.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import type { Account, DurableStore, EphemeralStore, User } from '../storage/types.ts';

/** One authenticated request, as the routes know it: the pool, the token's user and client, where it came from. */
export interface SelfServiceRequest {
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

/** A request with its audit trail, which the routes flush when the request ends. */
export interface SelfServiceScope extends SelfServiceRequest {
  /** Every event carries the user, client, address and user agent, and `via: 'self_service'`. */
  audit: AuditTrail;
}

/** What the use cases run on, made once by `createSelfService`. */
export interface SelfServiceContext {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  limits: Limits;
  /** The key recovery codes are hashed with, the login flow's. */
  recoveryCodeKey: Buffer;
  /** Seals TOTP secrets, as the login flow opens them. */
  totpBox: SecretBox;
  /** Seconds since the epoch. */
  now: () => number;
}

/**
 * What a change signed out, as the answer says it: other browsers' sessions,
 * and the apps that lost their sign-in somewhere (distinct clients).
 */
export type SignedOutView = Pick<SignedOut, 'sessions' | 'apps'>;

/** Why a change signs the user out elsewhere, as the audit trail records it. */
export type SignOutReason =
  | 'passkey_removed'
  | 'password_changed'
  | 'recovery_codes_replaced'
  | 'totp_removed';

export { invalidToken } from '../errors.ts';

export const loginRequired = (maxAge: number, detail: string) =>
  errorOf('login_required', {
    detail,
    // RFC 9470 §3: the step-up challenge, telling the client how recent a login it needs.
    headers: {
      'WWW-Authenticate': `Bearer error="insufficient_user_authentication", error_description="A more recent authentication is required.", max_age="${maxAge}"`,
    },
  });

export const notFirstParty = (clientId: string) =>
  errorOf('insufficient_scope', {
    detail: `token of client ${clientId}, which is not first-party`,
    headers: { 'WWW-Authenticate': 'Bearer error="insufficient_scope"' },
  });

/** The token's subject, loaded by `load`, if the token may manage credentials at all. */
async function subjectOf<T>(
  scope: SelfServiceScope,
  load: (poolId: string, id: string) => Promise<T | undefined>,
): Promise<T> {
  const client = scope.pool.clients.find((candidate) => candidate.client_id === scope.clientId);
  if (!client?.first_party) throw notFirstParty(scope.clientId);
  const subject = await load(scope.pool.id, scope.accountId);
  if (!subject) throw invalidToken(`token of user ${scope.accountId}, who no longer exists`);
  return subject;
}

/**
 * The token's user, if the token may manage credentials at all. Enough for reading.
 * @throws {PosternError} 403 insufficient_scope for a third-party client; 401 invalid_token when the user is gone.
 */
export function userOf({ durable }: SelfServiceContext, scope: SelfServiceScope): Promise<User> {
  return subjectOf(scope, (poolId, id) => durable.users.findById(poolId, id));
}

/** As `userOf`, with what the user enrolled and their organizations (one query). @throws {PosternError} as `userOf`. */
export function accountOf({ durable }: SelfServiceContext, scope: SelfServiceScope): Promise<Account> {
  return subjectOf(scope, (poolId, id) => durable.users.findAccount(poolId, id));
}

/** @throws {PosternError} 401 login_required when the sign-in is older than `recent_auth`. */
function assertRecentAuth(context: SelfServiceContext, scope: SelfServiceScope): void {
  const window = scope.pool.self_service.recent_auth;
  if (scope.authTime === undefined) throw loginRequired(window, 'token carries no auth_time');
  const age = context.now() - scope.authTime;
  if (age > window) throw loginRequired(window, `authenticated ${age} s ago, window ${window} s`);
}

/**
 * The user, for a write: also needs a recent enough authentication.
 * @throws {PosternError} as `userOf`; 401 login_required when the sign-in is older than `recent_auth`.
 */
export async function writerOf(context: SelfServiceContext, scope: SelfServiceScope): Promise<User> {
  const user = await userOf(context, scope);
  assertRecentAuth(context, scope);
  return user;
}

/** As `writerOf`, with the whole account (`accountOf`). @throws {PosternError} as `writerOf`. */
export async function writerAccountOf(
  context: SelfServiceContext,
  scope: SelfServiceScope,
): Promise<Account> {
  const account = await accountOf(context, scope);
  assertRecentAuth(context, scope);
  return account;
}

/** Signs the user out everywhere but this request's browser, and audits it. */
export async function signOutOthers(
  { durable, ephemeral }: SelfServiceContext,
  scope: SelfServiceScope,
  reason: SignOutReason,
): Promise<SignedOutView> {
  const signedOut = await signOutElsewhere(
    { durable, ephemeral },
    { poolId: scope.pool.id, accountId: scope.accountId, keep: { grantId: scope.grantId } },
  );
  scope.audit.record({ event: 'signed_out_elsewhere', outcome: 'success', detail: { reason, ...signedOut } });
  scope.log.info({ user: scope.accountId, reason, ...signedOut }, 'signed out elsewhere');
  return { sessions: signedOut.sessions, apps: signedOut.apps };
}
