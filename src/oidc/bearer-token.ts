/**
 * Reads a bearer token of one pool (RFC 6750 §2.1) for Postern's own APIs: a
 * user's access token (self-service) or a machine client's client-credentials
 * token (admin). oidc-provider owns the tokens: this looks one up in the
 * pool's store and applies the checks its userinfo endpoint applies, minus DPoP.
 *
 * Refused (undefined): a missing or malformed header; a token that is
 * unknown, expired or revoked; one issued to no user (client credentials);
 * one whose client or grant is gone or does not match; and a sender-
 * constrained token (DPoP `jkt`, mTLS `x5t#S256`), since these APIs take
 * bearer tokens only and cannot check a proof of possession.
 */
import type { Provider } from './create-provider.ts';

export interface BearerToken {
  accountId: string;
  clientId: string;
  /** The grant the token was issued under: the current browser's, when signing out elsewhere. */
  grantId: string;
  /** When the user last really authenticated (seconds since the epoch); see `extraTokenClaims`. */
  authTime?: number;
  /** Space-separated, as granted. */
  scope: string;
}

/** `Bearer <b64token>` (RFC 6750 §2.1); Postern's opaque tokens are far shorter than the cap. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]{1,1024}=*) *$/i;

/** The token's user, client and auth time; undefined when the header holds no usable token. */
export async function authenticateBearer(
  provider: Provider,
  authorizationHeader: string | undefined,
): Promise<BearerToken | undefined> {
  const value = BEARER.exec(authorizationHeader ?? '')?.[1];
  if (!value) return undefined;
  // find() verifies iat/exp itself: an expired token comes back undefined.
  const token = await provider.AccessToken.find(value);
  if (!token?.accountId || !token.clientId || token.isSenderConstrained()) return undefined;

  const client = await provider.Client.find(token.clientId);
  if (!client) return undefined;
  const grant = token.grantId ? await provider.Grant.find(token.grantId) : undefined;
  if (!grant || grant.clientId !== token.clientId || grant.accountId !== token.accountId) return undefined;

  const authTime = token.extra?.auth_time;
  return {
    accountId: token.accountId,
    clientId: token.clientId,
    grantId: grant.jti,
    ...(typeof authTime === 'number' && Number.isFinite(authTime) ? { authTime } : {}),
    scope: token.scope ?? '',
  };
}

/** A client-credentials token: the machine client it was issued to, and what it may do. */
export interface MachineToken {
  clientId: string;
  /** Space-separated, as granted. */
  scope: string;
}

/**
 * The client of a live client-credentials token of this pool (the admin
 * API's); undefined for anything else: a user's access token, an unknown,
 * expired or revoked token, a sender-constrained one, or one whose client
 * is gone. Another pool's token is unknown here: each pool's provider finds
 * only its own tokens.
 */
export async function authenticateMachineToken(
  provider: Provider,
  authorizationHeader: string | undefined,
): Promise<MachineToken | undefined> {
  const value = BEARER.exec(authorizationHeader ?? '')?.[1];
  if (!value) return undefined;
  const token = await provider.ClientCredentials.find(value);
  if (!token?.clientId || token.isSenderConstrained()) return undefined;
  if (!(await provider.Client.find(token.clientId))) return undefined;
  return { clientId: token.clientId, scope: token.scope ?? '' };
}
