/**
 * Lifetimes of oidc-provider's artifacts, in seconds. Every one is set on
 * purpose (oidc-provider warns about defaults it wants changed):
 * - codes are redeemed within seconds, so a minute is plenty (RFC 9700 §4.2);
 * - access tokens are bearer credentials: short, renewed with refresh tokens;
 * - refresh tokens rotate on every use (RFC 9700 §4.14.2), so each lives two
 *   weeks idle, and the grant bounds the whole chain at 30 days;
 * - an interaction gives a user half an hour to finish signing in.
 */
export const TTL = {
  AccessToken: 15 * 60,
  AuthorizationCode: 60,
  ClientCredentials: 15 * 60,
  IdToken: 60 * 60,
  Interaction: 30 * 60,
  Session: 14 * 24 * 3600,
  Grant: 30 * 24 * 3600,
  RefreshToken: 14 * 24 * 3600,
  // Not issued by Postern (features off), set so nothing runs on a default.
  DeviceCode: 10 * 60,
  BackchannelAuthenticationRequest: 10 * 60,
  PreAuthorizedCode: 10 * 60,
} as const;
