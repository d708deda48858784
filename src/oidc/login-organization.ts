/**
 * How a login's organization travels through oidc-provider, which knows
 * nothing of organizations:
 *
 * 1. The authorization request names it (`organization`: an id or slug), or
 *    the client is bound to one in the pool file; either is resolved here and
 *    kept in the request's parameters as the organization's id, so the login
 *    (src/interactions/) reads one thing. An unknown one is the client's
 *    error: `invalid_request`, before any page.
 * 2. The finished login carries it in the interaction's result. At resume
 *    the grant it lands in records it (`grant_organizations`, for members
 *    only), so every token of that grant, refreshed ones too, names the same
 *    organization; a login for another organization than the client's grant
 *    was made for gets a new grant, so earlier tokens keep theirs. The
 *    session remembers the organization of its latest login.
 * 3. A signed-in session is reused (no new login) only for the organization
 *    its latest login was for, whose policy that login met: a request that
 *    names another, or a client whose grant is for another, signs in again
 *    (prompt=none: login_required). A grant first given without a login (an
 *    app the session had not signed in to) gets the session's organization;
 *    a user who belongs to organizations and whose session was signed in for
 *    none of them signs in again.
 * 4. `org_id` and `org_name` are released with the `organization` scope.
 */
import { type Account, errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { PoolConfig } from '../config/types.ts';
import type { EphemeralStore, Organization, OrganizationRepository } from '../storage/types.ts';
import { SESSION_TTL } from './ttl.ts';

export type OrganizationLookup = Pick<
  OrganizationRepository,
  'find' | 'listForUser' | 'organizationOfGrant' | 'setGrantOrganization'
>;

export interface LoginOrganizations {
  poolId: string;
  organizations: OrganizationLookup;
  /** Where each session's latest login organization is kept (the ephemeral store). */
  sessions: Pick<EphemeralStore, 'get' | 'set'>;
}

/** oidc-provider's `extraParams` entry for `organization`: resolves it, or the client's binding, to an id. */
export function organizationParameter(pool: PoolConfig, organizations: OrganizationLookup) {
  const bindings = new Map(
    pool.clients.flatMap((client) => (client.organization ? [[client.client_id, client.organization]] : [])),
  );
  return async (ctx: KoaContextWithOIDC, value: unknown) => {
    const bound = ctx.oidc.client ? bindings.get(ctx.oidc.client.clientId) : undefined;
    if (value !== undefined && typeof value !== 'string')
      throw new errors.InvalidRequest('organization must be a string');
    const named = value === '' ? undefined : value;
    const handle = named ?? bound;
    if (!handle) return;
    const organization = await organizations.find(pool.id, handle);
    if (!organization) throw new errors.InvalidRequest('unknown organization');
    // A binding is a slug (the pool file's schema), unique in the pool.
    if (bound && named && organization.slug !== bound)
      throw new errors.InvalidRequest('this client signs users in to another organization');
    (ctx.oidc.params as Record<string, unknown>).organization = organization.id;
  };
}

/** The organization a finished login was for, as its interaction result carries it. */
function organizationOfResult(ctx: KoaContextWithOIDC): string | undefined {
  const result = ctx.oidc.result as { organization?: { id?: unknown } } | undefined;
  return typeof result?.organization?.id === 'string' ? result.organization.id : undefined;
}

const sessionKey = (poolId: string, sessionUid: string) => `session-organization:${poolId}:${sessionUid}`;

/** The organization the session's latest login was for (a record of an earlier login does not count). */
async function sessionOrganization(
  { poolId, sessions }: LoginOrganizations,
  session: { uid?: string; loginTs?: number } | undefined,
): Promise<string | undefined> {
  if (!session?.uid) return undefined;
  const raw = await sessions.get(sessionKey(poolId, session.uid));
  if (!raw) return undefined;
  const record = JSON.parse(raw) as { organizationId: string; loginTs: number };
  return record.loginTs === session.loginTs ? record.organizationId : undefined;
}

/**
 * At resume, whether the client's grant may take this login: it was made for
 * the login's organization (or both for none). Otherwise the login gets a
 * new grant, and the old one keeps naming its organization.
 */
export async function grantFitsLogin(
  ctx: KoaContextWithOIDC,
  { poolId, organizations }: LoginOrganizations,
  grantId: string,
): Promise<boolean> {
  if (!ctx.oidc.result?.login) return true;
  const recorded = await organizations.organizationOfGrant(poolId, grantId);
  return recorded?.id === organizationOfResult(ctx);
}

/** Requests whose grant needs a login that picks (or meets) an organization: organizationCheck prompts. */
const UNSETTLED = new WeakSet<object>();

/**
 * Records on the grant a request runs under the organization it is for. At
 * resume after a login: the login's, and the session remembers it; a login
 * finished for an organization the user has left meanwhile is refused. A
 * grant first given without a login here (a reused session, a consent): the
 * session's organization.
 * @throws {errors.AccessDenied} when the login's organization no longer has the user.
 */
export async function recordGrantOrganization(
  ctx: KoaContextWithOIDC,
  deps: LoginOrganizations,
  grant: { id: string; accountId: string; isNew: boolean },
): Promise<void> {
  const { poolId, organizations, sessions } = deps;
  const { result, session } = ctx.oidc;
  if (result?.login) {
    const organizationId = organizationOfResult(ctx);
    if (!organizationId) return;
    // Written again for a grant that fits: it also proves the user is still a member.
    const recorded = await organizations.setGrantOrganization(poolId, grant.id, {
      organizationId,
      userId: grant.accountId,
    });
    if (!recorded) throw new errors.AccessDenied('the user is no longer a member of the organization');
    if (session?.uid)
      await sessions.set(
        sessionKey(poolId, session.uid),
        JSON.stringify({ organizationId, loginTs: result.login.ts }),
        SESSION_TTL,
      );
    return;
  }
  if (!grant.isNew && !result?.consent?.grantId) return;
  if (!grant.isNew && (await organizations.organizationOfGrant(poolId, grant.id))) return;
  const memberships = await organizations.listForUser(poolId, grant.accountId);
  if (memberships.length === 0) return;
  const current = await sessionOrganization(deps, session);
  const membership = memberships.find((organization) => organization.id === current);
  if (membership)
    await organizations.setGrantOrganization(poolId, grant.id, {
      organizationId: membership.id,
      userId: grant.accountId,
    });
  else UNSETTLED.add(ctx);
}

/**
 * The login prompt's check for (3), on a session reused without a login: a
 * grant first given here that needs a login (recordGrantOrganization), a
 * request naming another organization than the client's grant is for, or a
 * grant for another organization than the session's latest login.
 */
export function organizationCheck(deps: LoginOrganizations) {
  return new interactionPolicy.Check(
    'organization_not_signed_in',
    'the session is not signed in to the requested organization',
    'login_required',
    async (ctx) => {
      const { oidc } = ctx;
      if (!oidc.session?.accountId || oidc.result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      if (UNSETTLED.has(ctx)) return interactionPolicy.Check.REQUEST_PROMPT;
      const requested = oidc.params?.organization;
      const grantId = oidc.client ? oidc.session.grantIdFor(oidc.client.clientId) : undefined;
      const granted = grantId
        ? await deps.organizations.organizationOfGrant(deps.poolId, grantId)
        : undefined;
      const met =
        typeof requested === 'string'
          ? granted?.id === requested
          : !granted || granted.id === (await sessionOrganization(deps, oidc.session));
      return met ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    },
  );
}

/**
 * The account, with `org_id` and `org_name` of the grant `grantId` when
 * claims are asked with the `organization` scope (looked up only then).
 */
export function withOrganizationClaims(
  account: Account,
  organizations: OrganizationLookup,
  poolId: string,
  grantId: string | undefined,
): Account {
  return {
    ...account,
    claims: async (use, scope, claims, rejected) => {
      const released = await account.claims(use, scope, claims, rejected);
      if (!grantId || !scope.split(' ').includes('organization')) return released;
      const organization: Organization | undefined = await organizations.organizationOfGrant(poolId, grantId);
      return organization ? { ...released, org_id: organization.id, org_name: organization.name } : released;
    },
  };
}
