/**
 * Lifetimes of oidc-provider's artifacts, in seconds. Every one is set on
 * purpose (oidc-provider warns about defaults it wants changed):
 * - codes are redeemed within seconds, so a minute is plenty (RFC 9700 §4.2);
 * - access tokens are bearer credentials: short, renewed with refresh tokens;
 * - refresh tokens rotate on every use (RFC 9700 §4.14.2), so each lives two
 *   weeks idle, and the grant bounds the whole chain at 30 days;
 * - an interaction gives a user half an hour to finish signing in;
 * - a signed-in session lasts two weeks; one without an account lives only
 *   minutes (see sessionTtl).
 */

/** A signed-in browser's session. */
export const SESSION_TTL = 14 * 24 * 3600;

/**
 * A session without an account. oidc-provider saves one when a browser that
 * is not signed in asks to log out (GET /session/end): it holds the CSRF
 * secret of the logout form, which the page posts back at once. Stored for two
 * weeks, every such request would leave a session behind for two weeks;
 * five minutes is plenty for the form. Not storing it at all would mean
 * replacing oidc-provider's logout flow, which Postern leaves to it.
 */
export const ANONYMOUS_SESSION_TTL = 5 * 60;

/**
 * oidc-provider's `ttl.Session`, asked at every save: a session gets two
 * weeks once someone signs in to it (the save after the login sets its
 * accountId), until then the few minutes above.
 */
export function sessionTtl(_ctx: unknown, session: { accountId?: string | undefined }): number {
  return session.accountId ? SESSION_TTL : ANONYMOUS_SESSION_TTL;
}

export const TTL = {
  AccessToken: 15 * 60,
  AuthorizationCode: 60,
  ClientCredentials: 15 * 60,
  IdToken: 60 * 60,
  Interaction: 30 * 60,
  Session: sessionTtl,
  Grant: 30 * 24 * 3600,
  RefreshToken: 14 * 24 * 3600,
  // Not issued by Postern (features off), set so nothing runs on a default.
  DeviceCode: 10 * 60,
  BackchannelAuthenticationRequest: 10 * 60,
  PreAuthorizedCode: 10 * 60,
} as const;
