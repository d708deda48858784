/**
 * The only `new Provider(...)` in Postern: one oidc-provider per pool, its
 * issuer `{public_url}/{pool}`. oidc-provider owns the protocol; this file
 * decides which of it is on (STACK.md lists what must be decided explicitly):
 *
 * - authorization code only (query or form_post responses), PKCE S256
 *   required for every client;
 * - refresh tokens (rotated on every use), client credentials (for the admin
 *   API, where a client uses it), introspection, revocation, userinfo,
 *   RP-initiated logout, PAR, DPoP;
 * - off: implicit and hybrid flows, dynamic registration, device flow, CIBA,
 *   resource indicators (Postern's own APIs read opaque tokens directly);
 * - `acr`, `amr` and `auth_time` declared as claims; `phr`/`phrh` advertised;
 * - authorization and PAR parameters refused unless every store can keep
 *   them (./storable-params.ts).
 *
 * Cookies get per-pool names and keys, so pools on one host never read each
 * other's sessions. A logout request from a browser that is signed in to
 * nothing never reaches oidc-provider, which would store a session for it. Pages oidc-provider renders (errors, logout) come from
 * the http layer through `pages`.
 */
import type { IncomingMessage } from 'node:http';
import Provider, {
  type ClientMetadata,
  type Configuration,
  interactionPolicy,
  type KoaContextWithOIDC,
} from 'oidc-provider';
import type { ClientFile } from '../config/schema.ts';
import type { PoolConfig } from '../config/types.ts';
import { ACR_VALUES, acrMeets, requiredAcr } from './acr.ts';
import { type AdapterStores, createAdapter } from './adapter.ts';
import { answerAnonymousLogout } from './anonymous-logout.ts';
import { type AccountLookup, accountOfFinishedLogin, findAccount } from './find-account.ts';
import {
  grantFitsLogin,
  type LoginOrganizations,
  type OrganizationLookup,
  organizationCheck,
  organizationParameter,
  recordGrantOrganization,
  withOrganizationClaims,
} from './login-organization.ts';
import { answerError, withHouseAnswers } from './provider-answers.ts';
import { providerRouteOf } from './provider-routes.ts';
import { DEFAULT_SIGNING_ALGORITHM, SIGNING_ALGORITHMS } from './signing-algorithms.ts';
import type { PrivateJwk } from './signing-keys.ts';
import { assertStorableParams } from './storable-params.ts';
import { TTL } from './ttl.ts';
import { confineAccountClaims, SCOPE_CLAIMS, widenGrant } from './widen-grant.ts';

const ROUTES = new WeakMap<IncomingMessage, string>();

/** The oidc-provider route (`authorization`, `token`, …) that answered a request, for metrics. */
export function oidcRouteOf(req: IncomingMessage): string | undefined {
  return ROUTES.get(req);
}

export type { Provider };

export const SCOPES = ['openid', 'offline_access', 'email', 'profile', 'organization', 'admin'] as const;

/**
 * Authorization responses go in the query or a form post. Not in the fragment:
 * Postern runs the code flow only, and a code has no business in a URL
 * fragment that scripts on the redirect page can read.
 */
const RESPONSE_MODES = ['query', 'form_post'];

/**
 * The scopes a pool offers: the identity scopes always, `offline_access`,
 * `organization` and `admin` only where one of its clients can use them, so discovery lists no
 * grant the pool does not serve (a refresh token needs offline_access).
 */
function scopesOf(pool: PoolConfig): string[] {
  const requested = new Set(pool.clients.flatMap((client) => client.scope.split(' ')));
  const refreshes = pool.clients.some((client) => client.grant_types.includes('refresh_token'));
  return SCOPES.filter((scope) => {
    if (scope === 'offline_access') return refreshes || requested.has(scope);
    if (scope === 'admin' || scope === 'organization') return requested.has(scope);
    return true;
  });
}

export interface ProviderPages {
  /** An error page for errors oidc-provider cannot return to the client. */
  error(req: IncomingMessage, view: { error: string; description?: string; status: number }): string;
  /** The "sign out?" confirmation; `form` is oidc-provider's form (with its CSRF token) to embed. */
  logout(req: IncomingMessage, view: { form: string; clientName?: string }): string;
  /** Shown after logout when the client gave no post_logout_redirect_uri. */
  logoutSuccess(req: IncomingMessage, view: { clientName?: string }): string;
}

export interface CreateProviderOptions {
  pool: PoolConfig;
  stores: AdapterStores;
  accounts: AccountLookup;
  /** Organizations: the `organization` parameter, and the organization each grant was signed in for. */
  organizations: OrganizationLookup;
  /** Where each session's latest login organization is kept. */
  sessions: LoginOrganizations['sessions'];
  jwks: { keys: PrivateJwk[] };
  /** Keys that sign this pool's cookies, newest first. */
  cookieKeys: string[];
  pages: ProviderPages;
  /** Called with every error oidc-provider answered as server_error. */
  onServerError(req: IncomingMessage, error: unknown): void;
}

/** The client metadata oidc-provider takes, from a pool file's client entry. */
export function toClientMetadata(client: ClientFile): ClientMetadata {
  const {
    first_party: _firstParty,
    organization: _organization,
    default_acr_values,
    client_secret,
    ...metadata
  } = client;
  const usesCode = client.grant_types.includes('authorization_code');
  return {
    ...metadata,
    ...(client_secret === undefined ? {} : { client_secret }),
    ...(default_acr_values === undefined ? {} : { default_acr_values }),
    response_types: usesCode ? ['code'] : [],
    ...(usesCode ? { response_modes: RESPONSE_MODES } : {}),
  } satisfies ClientMetadata;
}

export function createProvider(options: CreateProviderOptions): Provider {
  const { pool, stores, accounts, organizations, sessions, jwks, cookieKeys, pages, onServerError } = options;
  const loginOrganizations: LoginOrganizations = { poolId: pool.id, organizations, sessions };
  const mountPath = `/${pool.id}`;
  const firstParty = new Set(
    pool.clients.filter((client) => client.first_party).map((client) => client.client_id),
  );
  const cookiePrefix = `postern.${pool.id}`;
  const secure = new URL(pool.issuer).protocol === 'https:';
  const html = (ctx: KoaContextWithOIDC, body: string) => {
    ctx.type = 'html';
    ctx.body = body;
  };
  const answerPage = answerError((ctx, view) => pages.error(ctx.req, view));

  const configuration: Configuration = {
    adapter: createAdapter(pool.id, stores),
    clients: pool.clients.map(toClientMetadata),
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: DEFAULT_SIGNING_ALGORITHM,
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    jwks,
    cookies: {
      keys: cookieKeys,
      names: {
        session: `${cookiePrefix}.session`,
        interaction: `${cookiePrefix}.interaction`,
        resume: `${cookiePrefix}.resume`,
      },
      // Secure from the issuer, stated rather than left to Koa's default (the
      // request's X-Forwarded-Proto, which dispatch rewrites from public_url):
      // should that rewrite ever fail, setting a cookie errors instead of
      // sending it without Secure.
      long: { httpOnly: true, sameSite: 'lax', secure },
      short: { httpOnly: true, sameSite: 'lax', secure },
    },
    claims: {
      // org_id and org_name describe the login, like acr: in the ID token too
      // (oidc-provider puts only openid's claims there when it issues an
      // access token), and released only with the organization scope (find-account).
      openid: [...SCOPE_CLAIMS.openid, ...SCOPE_CLAIMS.organization],
      email: [...SCOPE_CLAIMS.email],
      profile: [...SCOPE_CLAIMS.profile],
    },
    extraParams: {
      // oidc-provider runs these on every authorization and PAR request, before it stores
      // anything: the parameters are first checked to be text every store keeps, also
      // before the organization is looked up by the one this names.
      organization: checkedFirst(assertStorableParams, organizationParameter(pool, organizations)),
    },
    scopes: scopesOf(pool),
    acrValues: [...ACR_VALUES],
    responseTypes: ['code'],
    // Exactly what a pool file can configure for a client.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    pkce: { required: () => true },
    // Exact redirect URI in every request, even for a client with only one (RFC 9700 §2.1).
    allowOmittingSingleRegisteredRedirectUri: false,
    rotateRefreshToken: true,
    // Access tokens carry the time of the login they come from (a refreshed one
    // keeps it), so the self-service API can ask for a recent authentication.
    extraTokenClaims: (ctx, token) => {
      if (token.kind !== 'AccessToken') return undefined;
      const { AuthorizationCode, RefreshToken } = ctx.oidc.entities;
      const authTime = AuthorizationCode?.authTime ?? RefreshToken?.authTime;
      return authTime === undefined ? undefined : { auth_time: authTime };
    },
    loadExistingGrant: (ctx) =>
      loadGrant(ctx, firstParty.has(ctx.oidc.client?.clientId ?? ''), {
        fits: (grantId) => grantFitsLogin(ctx, loginOrganizations, grantId),
        landed: (grant) => recordGrantOrganization(ctx, loginOrganizations, grant),
      }),
    findAccount: async (ctx, sub, token) => {
      const account =
        ctx.oidc?.route === 'resume' && ctx.oidc.result?.login?.accountId === sub
          ? accountOfFinishedLogin(accounts, pool.id, sub)
          : await findAccount(accounts, pool.id, sub);
      const grantId = (token as { grantId?: string } | undefined)?.grantId;
      return (
        account && confineAccountClaims(withOrganizationClaims(account, organizations, pool.id, grantId))
      );
    },
    interactions: {
      policy: loginPolicy(organizationCheck(loginOrganizations)),
      url: (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      // Only where a client uses it (the admin API's machine clients).
      clientCredentials: {
        enabled: pool.clients.some((client) => client.grant_types.includes('client_credentials')),
      },
      introspection: {
        enabled: true,
        // A client may introspect only its own tokens.
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => html(ctx, pages.logout(ctx.req, { form, clientName: clientLabel(ctx) })),
        postLogoutSuccessSource: (ctx) =>
          html(ctx, pages.logoutSuccess(ctx.req, { clientName: clientLabel(ctx) })),
      },
      userinfo: { enabled: true },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      dPoP: { enabled: true },
      resourceIndicators: { enabled: false },
      registration: { enabled: false },
      deviceFlow: { enabled: false },
      backchannelLogout: { enabled: false },
    },
    enabledJWA: {
      idTokenSigningAlgValues: [...SIGNING_ALGORITHMS],
      userinfoSigningAlgValues: [...SIGNING_ALGORITHMS],
      introspectionSigningAlgValues: [...SIGNING_ALGORITHMS],
    },
    ttl: {
      ...TTL,
      // A public browser client's rotated refresh token keeps its predecessor's
      // expiry, so the chain cannot outlive the first token (oidc-provider's own rule).
      RefreshToken: (ctx, token, client) => {
        const rotated = ctx?.oidc?.entities.RotatedRefreshToken;
        if (
          rotated &&
          client.applicationType === 'web' &&
          client.clientAuthMethod === 'none' &&
          !token.isSenderConstrained()
        ) {
          return rotated.remainingTTL;
        }
        return TTL.RefreshToken;
      },
    },
    // CORS for browser clients: only from the origins of their own redirect URIs.
    clientBasedCORS: (_ctx, origin, client) =>
      client.redirectUris?.some((uri: string) => new URL(uri).origin === origin) ?? false,
    renderError: (ctx, out, error) => {
      const status = (error as { statusCode?: number }).statusCode ?? ctx.status ?? 500;
      html(ctx, pages.error(ctx.req, { error: out.error, description: out.error_description, status }));
    },
  };

  const provider = new Provider(pool.issuer, configuration);
  // Postern rewrites Host and X-Forwarded-Proto from public_url before every
  // request reaches the provider, so these headers are trusted here.
  provider.proxy = true;
  provider.use(async (ctx, next) => {
    // Mounted by dispatch with the prefix stripped; this tells urlFor the prefix.
    (ctx as unknown as { mountPath: string }).mountPath = mountPath;
    // A logout from a browser signed in to nothing is answered here, storing nothing (./anonymous-logout.ts).
    const route = providerRouteOf(ctx.path);
    if (
      route?.name === 'end_session' &&
      route.methods.includes(ctx.method) &&
      (await answerAnonymousLogout(provider, ctx, {
        signedOut: (clientName) => pages.logoutSuccess(ctx.req, clientName ? { clientName } : {}),
      }))
    ) {
      ROUTES.set(ctx.req, route.name);
      return;
    }
    await withHouseAnswers(ctx, next, {
      answer: answerPage,
      onServerError: (error) => onServerError(ctx.req, error),
    });
    if (ctx.oidc?.route) ROUTES.set(ctx.req, ctx.oidc.route);
    // oidc-provider lists every mode it implements; clients here may use only these.
    if (ctx.oidc?.route === 'discovery' && ctx.body && typeof ctx.body === 'object') {
      (ctx.body as { response_modes_supported?: string[] }).response_modes_supported = [...RESPONSE_MODES];
    }
  });
  provider.on('server_error', (ctx, error) => onServerError(ctx.req, error));
  return provider;
}

/** An extraParams validator that runs `check(ctx)` first. */
function checkedFirst(
  check: (ctx: KoaContextWithOIDC) => void,
  validate: (ctx: KoaContextWithOIDC, value: unknown) => Promise<void>,
) {
  return async (ctx: KoaContextWithOIDC, value: unknown) => {
    check(ctx);
    await validate(ctx, value);
  };
}

/**
 * The grant a request runs under. A first-party client never shows a consent
 * screen: its grant is created, or widened, to what it asks for (the pattern
 * oidc-provider documents for skipping consent), within what widenGrant
 * allows. Others keep what the user consented to (confined to its scopes);
 * anything missing sends them to the consent step.
 */
async function loadGrant(
  ctx: KoaContextWithOIDC,
  firstParty: boolean,
  organization: {
    /** Whether the login at resume may land in this existing grant (made for its organization). */
    fits: (grantId: string) => Promise<boolean>;
    /** Called with the grant the request runs under (the organization it is for goes with it). */
    landed: (grant: { id: string; accountId: string; isNew: boolean }) => Promise<void>;
  },
) {
  const { oidc } = ctx;
  const client = oidc.client;
  const accountId = oidc.session?.accountId ?? oidc.result?.login?.accountId;
  const grantId =
    oidc.result?.consent?.grantId ?? (client ? oidc.session?.grantIdFor(client.clientId) : undefined);
  const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (!client || !accountId) return existing;
  if (!firstParty) {
    if (existing && widenGrant(existing)) await existing.save();
    if (existing?.jti) await organization.landed({ id: existing.jti, accountId, isNew: false });
    return existing;
  }

  // A login for another organization than the grant's gets a grant of its own.
  const reusable = existing?.jti && (await organization.fits(existing.jti)) ? existing : undefined;
  const grant = reusable ?? new oidc.provider.Grant({ clientId: client.clientId, accountId });
  const changed = widenGrant(grant, {
    scope: oidc.params?.scope,
    claims: oidc.params?.claims,
    allowedScope: client.scope,
  });
  // Save only what changed: a returning user's login should not write the grant again.
  if (changed || !reusable) await grant.save();
  if (grant.jti) await organization.landed({ id: grant.jti, accountId, isNew: !reusable });
  return grant;
}

/**
 * oidc-provider's default policy, with the login prompt also due when the
 * session's acr is below what the request demands (acr_values, an essential
 * acr claim, the client's default_acr_values). Its own essential-acr checks
 * compare exact values, so they would re-prompt forever for phr when the user
 * signed in with a phrh passkey; this check knows phrh satisfies phr. With
 * prompt=none an unmet demand answers login_required, never a weaker token.
 */
function loginPolicy(...checks: InstanceType<typeof interactionPolicy.Check>[]) {
  const policy = interactionPolicy.base();
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt');
  for (const check of checks) login.checks.add(check);
  login.checks.remove('essential_acr');
  login.checks.remove('essential_acrs');
  login.checks.add(
    new interactionPolicy.Check(
      'acr_not_met',
      'the requested authentication context could not be obtained',
      'login_required',
      (ctx) => {
        const { oidc } = ctx;
        const required = requiredAcr({
          acrValues: oidc.params?.acr_values,
          claims: oidc.params?.claims,
          defaultAcrValues: oidc.client?.defaultAcrValues,
        });
        if (!required || !oidc.session?.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const acr = oidc.result?.login?.acr ?? oidc.session.acr;
        return acrMeets(acr, required)
          ? interactionPolicy.Check.NO_NEED_TO_PROMPT
          : interactionPolicy.Check.REQUEST_PROMPT;
      },
    ),
  );
  return policy;
}

function clientLabel(ctx: KoaContextWithOIDC): string | undefined {
  const client = ctx.oidc.client;
  return client ? (client.clientName ?? client.clientId) : undefined;
}
