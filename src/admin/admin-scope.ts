/**
 * What every admin use case shares: the scope of one request authenticated
 * by a pool's machine client, the stores it runs on, how users and
 * passkeys are shown to operators, and the cursors of paged lists.
 *
 * An operator acts on any user of the pool, outside that user's session:
 * there is no recent-authentication window and no "keep a way in" rule
 * here; instead every write is audited with the acting client
 * (`via: 'admin'`), and whatever may answer a stolen credential signs the
 * user out everywhere.
 */
import type { AuditTrail } from '../accounts/audit-trail.ts';
import type { Limits } from '../accounts/limits.ts';
import { type PasskeyView, toPasskeyView } from '../accounts/passkey-view.ts';
import type { PoolConfig } from '../config/types.ts';
import type { EnrollmentLinks } from '../enrollment/enrollment-links.ts';
import { invalidRequest, notFound } from '../errors.ts';
import type { Logger } from '../logging/create-logger.ts';
import { type SignedOut, signOutElsewhere } from '../oidc/sign-out-elsewhere.ts';
import type { DurableStore, EphemeralStore, Passkey, User } from '../storage/types.ts';

/** One request of a machine client, as the routes know it. */
export interface AdminRequest {
  pool: PoolConfig;
  /** The machine client whose client-credentials token authenticated the request. */
  clientId: string;
  ip: string;
  userAgent: string;
  log: Logger;
}

/** A request with its audit trail, which the routes flush when the request ends. */
export interface AdminScope extends AdminRequest {
  /** Every event carries the acting client, address and user agent, and `via: 'admin'`. */
  audit: AuditTrail;
}

/** What the use cases run on, made once by `createAdminService`. */
export interface AdminContext {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  limits: Limits;
  links: EnrollmentLinks;
}

export const noSuchUser = () => notFound('There is no such user.');

/** The pool's user `id`. @throws {PosternError} 404 not_found. */
export async function userOf({ durable }: AdminContext, scope: AdminScope, id: string): Promise<User> {
  const user = await durable.users.findById(scope.pool.id, id);
  if (!user) throw noSuchUser();
  return user;
}

/** What signing out did, as admin answers say it. */
export type SignedOutView = Pick<SignedOut, 'sessions' | 'apps'>;

/**
 * Signs the user out everywhere (every session, grant and token) and audits it with `reason`.
 * Also for the command line (src/organizations/organization-service.ts), hence the narrower types.
 */
export async function signOutEverywhere(
  { durable, ephemeral }: Pick<AdminContext, 'durable' | 'ephemeral'>,
  scope: Pick<AdminScope, 'pool' | 'audit' | 'log'>,
  userId: string,
  reason: string,
): Promise<SignedOutView> {
  const signedOut = await signOutElsewhere(
    { durable, ephemeral },
    { poolId: scope.pool.id, accountId: userId, keep: {} },
  );
  scope.audit.record({
    event: 'signed_out_everywhere',
    outcome: 'success',
    userId,
    detail: { reason, ...signedOut },
  });
  scope.log.info({ user: userId, reason, ...signedOut }, 'signed out everywhere by an operator');
  return { sessions: signedOut.sessions, apps: signedOut.apps };
}

// ---------------------------------------------------------------- views

export interface UserView {
  id: string;
  email: string;
  email_verified: boolean;
  name: string | null;
  created_at: string;
  updated_at: string;
}

export function toUserView(user: User): UserView {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    name: user.name,
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
  };
}

/** A passkey as operators see it: the user's view, plus what support needs. */
export interface AdminPasskeyView extends PasskeyView {
  user_id: string;
  /** A discoverable credential (usernameless sign-in); null where the browser never said. */
  discoverable: boolean | null;
  /** How the authenticator said it can be reached (usb, nfc, ble, internal, hybrid). */
  transports: string[];
}

export function toAdminPasskeyView(passkey: Passkey): AdminPasskeyView {
  return {
    ...toPasskeyView(passkey),
    user_id: passkey.userId,
    discoverable: passkey.discoverable,
    transports: [...passkey.transports],
  };
}

// ---------------------------------------------------------------- paging

export const PAGE_LIMIT = { default: 50, max: 200 } as const;

/**
 * Cursors are opaque to clients: the last item's key, base64url-encoded, so
 * nobody builds one by hand and the key's form may change.
 */
export const cursorOf = (key: string | number) => Buffer.from(String(key), 'utf8').toString('base64url');

export const foreignCursor = (cursor: string) =>
  invalidRequest('That cursor is not one this list gave.', `cursor ${cursor.slice(0, 200)}`);

/** The key a cursor this API gave holds. @throws {PosternError} 400 for any other string. */
export function keyOfCursor(cursor: string): string {
  const key = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!key || cursorOf(key) !== cursor) throw foreignCursor(cursor);
  return key;
}

/**
 * A page from a list fetched with one item more than `limit`: that item says
 * whether another page follows; `next_cursor` fetches it, null on the last.
 */
export function pageOf<T>(
  fetched: T[],
  limit: number,
  keyOf: (item: T) => string | number,
): { items: T[]; next_cursor: string | null } {
  const items = fetched.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    next_cursor: fetched.length > limit && last !== undefined ? cursorOf(keyOf(last)) : null,
  };
}
