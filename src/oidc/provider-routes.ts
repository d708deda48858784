/**
 * The endpoints a pool's oidc-provider serves, with the methods each takes,
 * and the one way to match a request path to them: as oidc-provider's own
 * router does (lib/helpers/router.js), so that what Postern decides in front
 * of it (per-address limits, 405s) is about the endpoint oidc-provider will
 * run, however the path is spelt.
 *
 * oidc-provider 9 registers these in lib/helpers/initialize_app.js for the
 * features src/oidc/create-provider.ts enables: userinfo, introspection,
 * revocation, RP-initiated logout and PAR on; `enableHttpPostMethods`
 * (POST to /auth and /session/end) left off; registration, device flow, CIBA,
 * client attestation and verifiable credentials off. The paths are its
 * default `routes`, which Postern does not change. A GET route answers HEAD
 * too, and the CORS endpoints have an OPTIONS route (their preflight).
 * test/integration/platform/wrong-methods.test.ts sends every method listed
 * here and checks oidc-provider routes it, so an upgrade that moves one
 * fails there.
 */

export interface ProviderRoute {
  /** oidc-provider's name for the route (`ctx.oidc.route`). */
  name: string;
  /** The path under the pool's prefix; `:uid` is one path segment. */
  path: string;
  /** The methods oidc-provider routes on this path. */
  methods: readonly string[];
}

const GET = ['GET', 'HEAD'] as const;
const CORS_GET = ['GET', 'HEAD', 'OPTIONS'] as const;
const CORS_POST = ['OPTIONS', 'POST'] as const;

export const PROVIDER_ROUTES: readonly ProviderRoute[] = [
  { name: 'authorization', path: '/auth', methods: GET },
  { name: 'resume', path: '/auth/:uid', methods: GET },
  { name: 'userinfo', path: '/me', methods: ['GET', 'HEAD', 'OPTIONS', 'POST'] },
  { name: 'token', path: '/token', methods: CORS_POST },
  { name: 'jwks', path: '/jwks', methods: CORS_GET },
  { name: 'discovery', path: '/.well-known/oauth-authorization-server', methods: CORS_GET },
  { name: 'discovery', path: '/.well-known/openid-configuration', methods: CORS_GET },
  { name: 'revocation', path: '/token/revocation', methods: CORS_POST },
  { name: 'introspection', path: '/token/introspection', methods: CORS_POST },
  { name: 'pushed_authorization_request', path: '/request', methods: CORS_POST },
  { name: 'end_session', path: '/session/end', methods: GET },
  { name: 'end_session_confirm', path: '/session/end/confirm', methods: ['POST'] },
  { name: 'end_session_success', path: '/session/end/success', methods: GET },
];

/**
 * oidc-provider's case folding for ASCII paths: it upper-cases a path before
 * comparing it, but never lets a non-ASCII letter fold into an ASCII one
 * (`ſ` does not become `S`), so only ASCII letters change here.
 */
const fold = (path: string) => path.replace(/[a-z]+/g, (letters) => letters.toUpperCase());

const STATIC = new Map<string, ProviderRoute>();
const DYNAMIC: Array<{ segments: Array<string | null>; route: ProviderRoute }> = [];
for (const route of PROVIDER_ROUTES) {
  if (route.path.includes('/:')) {
    DYNAMIC.push({
      segments: route.path.split('/').map((segment) => (segment.startsWith(':') ? null : fold(segment))),
      route,
    });
  } else STATIC.set(fold(route.path), route);
}

function lookup(path: string): ProviderRoute | undefined {
  const folded = fold(path);
  const found = STATIC.get(folded);
  if (found) return found;
  const parts = folded.split('/');
  return DYNAMIC.find(
    ({ segments }) =>
      segments.length === parts.length &&
      segments.every((segment, index) => (segment === null ? parts[index] !== '' : segment === parts[index])),
  )?.route;
}

/**
 * The endpoint of oidc-provider a path under a pool's prefix names, whatever
 * the method: matched case-insensitively, and with one trailing slash
 * ignored, as oidc-provider matches it. `/AUTH`, `/auth/` and `/Session/End`
 * are its authorization and logout endpoints.
 */
export function providerRouteOf(path: string): ProviderRoute | undefined {
  const exact = lookup(path);
  if (exact) return exact;
  return path.length > 1 && path.endsWith('/') ? lookup(path.slice(0, -1)) : undefined;
}
