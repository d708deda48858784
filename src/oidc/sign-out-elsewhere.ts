/**
 * Signs a user out everywhere but the current browser: after a change that
 * may answer a stolen credential (a passkey removed, the password changed,
 * recovery codes replaced, a recovery sign-in), whoever holds the old one must
 * not stay signed in (issue 8, item 2; RFC 9700 §4.14.2 on revoking what a
 * compromised credential obtained).
 *
 * What goes:
 * - every other oidc-provider Session of the account (ephemeral store): that
 *   browser's next authorization request, prompt=none included, needs a new
 *   sign-in;
 * - every other Grant of the account (durable store), with what it issued:
 *   access tokens, codes and refresh tokens, in both stores, exactly as a
 *   replayed refresh token revokes its grant (./adapter.ts). Third-party
 *   consents go too: an app the thief consented to must not keep its tokens.
 *
 * What stays, "the current browser": the session named by `keep.sessionUid`
 * (an interaction's own session) or the session holding `keep.grantId` (the
 * grant of the self-service request's access token), and every grant that
 * session holds (`authorizations: { [clientId]: { grantId } }`), plus
 * `keep.grantId` itself.
 *
 * Sessions go before grants, so a session being ended cannot lend a grant
 * being revoked to a new authorization request in between. A sign-in that
 * starts after the listing is not seen; it needed the credentials as they are
 * after the change, which the caller made first.
 */
import type { OidcPayload, StoredOidcArtifact } from '../storage/types.ts';
import { type AdapterStores, createGrantRevoker, oidcModelStoreFor } from './adapter.ts';

/** What belongs to the current browser and is kept. */
export interface KeepCurrent {
  /** (Optional) The grant of the request's access token: kept, with the session holding it. */
  grantId?: string;
  /** (Optional) The uid of the browser's own session: kept, with its grants. */
  sessionUid?: string;
}

/** What was signed out. */
export interface SignedOut {
  /** Other browsers' sessions ended. */
  sessions: number;
  /** Grants revoked (one per app and browser). */
  grants: number;
  /** Distinct apps (client ids) among the revoked grants. */
  apps: number;
}

export interface SignOutElsewhereOptions {
  poolId: string;
  accountId: string;
  keep: KeepCurrent;
}

/** The grant ids a session's payload holds, by client id. */
function grantsOf(session: OidcPayload): Map<string, string> {
  const grants = new Map<string, string>();
  const authorizations = session.authorizations;
  if (!authorizations || typeof authorizations !== 'object') return grants;
  for (const [clientId, authorization] of Object.entries(authorizations)) {
    const grantId = (authorization as { grantId?: unknown } | null)?.grantId;
    if (typeof grantId === 'string') grants.set(clientId, grantId);
  }
  return grants;
}

function isCurrent(session: StoredOidcArtifact, keep: KeepCurrent): boolean {
  if (keep.sessionUid !== undefined && session.payload.uid === keep.sessionUid) return true;
  return keep.grantId !== undefined && [...grantsOf(session.payload).values()].includes(keep.grantId);
}

/**
 * Ends the account's other sessions and revokes its other grants.
 * @throws {StoreUnavailableError} when a store is unreachable; what was done before stays done.
 */
export async function signOutElsewhere(
  stores: AdapterStores,
  { poolId, accountId, keep }: SignOutElsewhereOptions,
): Promise<SignedOut> {
  const storeFor = oidcModelStoreFor(poolId, stores);
  const [sessions, grants] = await Promise.all([
    storeFor('Session').listByAccountId('Session', accountId),
    storeFor('Grant').listByAccountId('Grant', accountId),
  ]);

  const current = sessions.filter((session) => isCurrent(session, keep));
  const keptGrants = new Set(current.flatMap((session) => [...grantsOf(session.payload).values()]));
  if (keep.grantId !== undefined) keptGrants.add(keep.grantId);
  const ended = sessions.filter((session) => !current.includes(session));
  const revoked = grants.filter((grant) => !keptGrants.has(grant.id));

  await Promise.all(ended.map((session) => storeFor('Session').destroy('Session', session.id)));
  const revokeGrant = createGrantRevoker(poolId, stores);
  await Promise.all(revoked.map((grant) => revokeGrant(grant.id)));

  return {
    sessions: ended.length,
    grants: revoked.length,
    apps: new Set(revoked.map((grant) => String(grant.payload.clientId ?? grant.id))).size,
  };
}
