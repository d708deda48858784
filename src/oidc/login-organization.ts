/**
 * How a login's organization travels through oidc-provider, which knows
 * nothing of organizations:
 *
 * 1. The authorization request names it (`organization`: an id or slug), or
 *    the client is bound to one in the pool file; either is resolved here and
 *    kept in the request's parameters as the organization's id, so the login
 *    (src/interactions/) reads one thing. An unknown one is the client's
 *    error: `invalid_request`, before any page.
 * 2. The finished login carries it in the interaction's result; at resume the
 *    grant it lands in records it (`grant_organizations`), so every token of
 *    that grant, refreshed ones too, names the same organization.
 * 3. A signed-in session is reused for a request that names an organization
 *    only when the client's grant is for that same organization; otherwise
 *    the user signs in again (prompt=none: login_required). A session reused
 *    for a client it has no grant for yet gives the new grant the user's
 *    only organization, as a login would; a user of several signs in again,
 *    to pick one.
 * 4. `org_id` and `org_name` are released with the `organization` scope.
 */
import { type Account, errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { PoolConfig } from '../config/types.ts';
import type { Organization, OrganizationRepository } from '../storage/types.ts';

export type OrganizationLookup = Pick<
  OrganizationRepository,
  'find' | 'listForUser' | 'organizationOfGrant' | 'setGrantOrganization'
>;

/** The claims the `organization` scope releases. */
export const ORGANIZATION_CLAIMS = ['org_id', 'org_name'] as const;

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
    if (!named && !bound) return;
    const organization = await organizations.find(pool.id, (named ?? bound)!);
    if (!organization) throw new errors.InvalidRequest('unknown organization');
    if (bound && named) {
      const binding = await organizations.find(pool.id, bound);
      if (binding?.id !== organization.id)
        throw new errors.InvalidRequest('this client signs users in to another organization');
    }
    (ctx.oidc.params as Record<string, unknown>).organization = organization.id;
  };
}

/** The organization a finished login was for, as its interaction result carries it. */
function organizationOfResult(ctx: KoaContextWithOIDC): string | undefined {
  const result = ctx.oidc.result as { organization?: { id?: unknown } } | undefined;
  return typeof result?.organization?.id === 'string' ? result.organization.id : undefined;
}

/**
 * Records on the grant a request runs under the organization it is for. At
 * resume after a login: the login's (or none, when a grant made for one is
 * reused by a login without). A grant first given without a login here (a
 * reused session, a consent): the user's only organization. `isNew`: the
 * grant was created in this request.
 */
export async function recordGrantOrganization(
  ctx: KoaContextWithOIDC,
  organizations: OrganizationLookup,
  poolId: string,
  grant: { id: string; accountId: string; isNew: boolean },
): Promise<void> {
  const { result } = ctx.oidc;
  if (result?.login) {
    const organizationId = organizationOfResult(ctx);
    if (organizationId || !grant.isNew)
      await organizations.setGrantOrganization(poolId, grant.id, organizationId ?? null);
    return;
  }
  if (!grant.isNew && !result?.consent?.grantId) return;
  const memberships = await organizations.listForUser(poolId, grant.accountId);
  if (memberships.length === 1)
    await organizations.setGrantOrganization(poolId, grant.id, memberships[0]!.id);
  if (memberships.length > 1) UNSETTLED.add(ctx);
}

/** Requests whose new grant needs the user to pick an organization: organizationCheck prompts. */
const UNSETTLED = new WeakSet<object>();

/**
 * The login prompt's check for (3): the request names an organization the
 * session's grant for this client was not signed in for; or names none, for
 * a grant first given in this request to a user of several (oidc-provider
 * loads the grant before it checks the prompts).
 */
export function organizationCheck(organizations: OrganizationLookup, poolId: string) {
  return new interactionPolicy.Check(
    'organization_not_signed_in',
    'the session is not signed in to the requested organization',
    'login_required',
    async (ctx) => {
      const { oidc } = ctx;
      const requested = oidc.params?.organization;
      const accountId = oidc.session?.accountId;
      if (!accountId || oidc.result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const grantId = oidc.client ? oidc.session.grantIdFor(oidc.client.clientId) : undefined;
      if (typeof requested !== 'string')
        return UNSETTLED.has(ctx)
          ? interactionPolicy.Check.REQUEST_PROMPT
          : interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const current = grantId ? await organizations.organizationOfGrant(poolId, grantId) : undefined;
      return current?.id === requested
        ? interactionPolicy.Check.NO_NEED_TO_PROMPT
        : interactionPolicy.Check.REQUEST_PROMPT;
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
