/**
 * What a grant may hold, decided in one place for both ways a grant grows:
 * a first-party client's implied consent (create-provider's loadGrant) and a
 * user's "Allow" on the consent screen (interactions' consent call).
 *
 * The rule: a grant's claims never reach past its scopes. Scopes are the
 * requested ones the client is allowed; a claim named in the claims
 * parameter (OIDC Core §5.5) is granted only when it belongs to a scope of
 * the grant (OIDC Core §5.4), so the consent screen, which lists scopes,
 * shows everything the user gives away. Other requested claims are recorded
 * as rejected: oidc-provider's consent prompt then counts them as answered
 * (its op_claims_missing check) instead of asking again forever, and leaves
 * them out of ID tokens and userinfo.
 */
import type { Account, Grant } from 'oidc-provider';

/**
 * The claims each scope releases (OIDC Core §5.4), as oidc-provider's
 * `claims` configuration. `openid`'s are about the login itself and always
 * released; an essential `acr` claim is how a client asks for a step-up.
 */
export const SCOPE_CLAIMS = {
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  email: ['email', 'email_verified'],
  profile: ['name'],
  organization: ['org_id', 'org_name'],
} as const satisfies Record<string, readonly string[]>;

const KNOWN_CLAIMS = new Set<string>(Object.values(SCOPE_CLAIMS).flat());

/** The claims the given scopes release: always openid's. */
export function claimsOfScopes(scopes: Iterable<string>): Set<string> {
  const claims = new Set<string>(SCOPE_CLAIMS.openid);
  for (const scope of scopes) {
    const released = (SCOPE_CLAIMS as Record<string, readonly string[] | undefined>)[scope];
    for (const claim of released ?? []) claims.add(claim);
  }
  return claims;
}

export interface GrantRequest {
  /** The request's `scope` parameter, as oidc-provider validated it. */
  scope?: unknown;
  /** The request's `claims` parameter (a JSON string), if any. */
  claims?: unknown;
  /**
   * (Optional) The scopes the client may request (its `scope` metadata).
   * Defaults to any: oidc-provider lets a client without one request every scope it offers.
   */
  allowedScope?: string | undefined;
}

/**
 * Widens `grant` to what `request` asks for within the rule above, and
 * confines what it already holds to it (a grant written before the rule is
 * brought into line). Without `request`, only confines. Does not save.
 *
 * @returns whether the grant changed, so a caller can skip the write.
 */
export function widenGrant(grant: Grant, request?: GrantRequest): boolean {
  const before = fingerprint(grant);

  if (request) {
    // oidc-provider already refuses a scope outside the client's (invalid_scope);
    // the intersection keeps this function right on its own.
    const allowed =
      request.allowedScope === undefined ? undefined : new Set(splitScope(request.allowedScope));
    const scopes = splitScope(request.scope).filter((scope) => allowed?.has(scope) ?? true);
    if (scopes.length > 0) grant.addOIDCScope(scopes);
  }

  const releasable = claimsOfScopes(grant.getOIDCScope().split(' ').filter(Boolean));
  const requested = request ? requestedClaims(request.claims) : [];
  const held = grant.openid?.claims ?? [];
  const rejected = grant.rejected?.openid?.claims ?? [];

  const granted = unique([...held, ...requested].filter((claim) => releasable.has(claim)));
  // A claim once refused becomes grantable when its scope is granted later.
  const refused = unique([...rejected, ...held, ...requested].filter((claim) => !releasable.has(claim)));

  if (granted.length > 0 || grant.openid) {
    grant.openid = { ...grant.openid, claims: granted };
  }
  if (refused.length > 0 || grant.rejected?.openid) {
    grant.rejected = { ...grant.rejected, openid: { ...grant.rejected?.openid, claims: refused } };
  }
  return fingerprint(grant) !== before;
}

/**
 * An account whose claims never reach past the scopes they are asked with:
 * the same rule at release time, for grants that predate it (a refresh
 * token's ID token, userinfo).
 */
export function confineAccountClaims(account: Account): Account {
  return {
    ...account,
    claims: async (use, scope, claims, rejected) => {
      const released = await account.claims(use, scope, claims, rejected);
      const allowed = claimsOfScopes(scope.split(' '));
      return Object.fromEntries(
        Object.entries(released).filter(([claim]) => allowed.has(claim)),
      ) as typeof released;
    },
  };
}

/**
 * Claim names in a claims parameter's `id_token` and `userinfo` members, the
 * ones oidc-provider itself honours (value null or an object). oidc-provider
 * has refused a malformed parameter before any grant is loaded; if one got
 * here anyway it asks for nothing.
 */
function requestedClaims(parameter: unknown): string[] {
  if (typeof parameter !== 'string') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(parameter);
  } catch {
    return [];
  }
  if (!isObject(parsed)) return [];
  const names: string[] = [];
  for (const member of [parsed.id_token, parsed.userinfo]) {
    if (!isObject(member)) continue;
    for (const [claim, value] of Object.entries(member)) {
      if (KNOWN_CLAIMS.has(claim) && (value === null || isObject(value))) names.push(claim);
    }
  }
  return names;
}

function splitScope(scope: unknown): string[] {
  return typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function fingerprint(grant: Grant): string {
  return JSON.stringify([grant.openid?.scope, grant.openid?.claims, grant.rejected?.openid?.claims]);
}
