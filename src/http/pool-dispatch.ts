/**
 * Hands `/{pool}/…` requests that Postern's own routes did not take to that
 * pool's oidc-provider, with the prefix stripped (oidc-provider learns it
 * through `ctx.mountPath`). The issuer's URLs must never come from the
 * client: Host and X-Forwarded-Proto are rewritten from public_url, and
 * X-Forwarded-For survives only when the operator trusts a proxy, cut to the
 * hop that proxy appended.
 *
 * Requests anyone can make without signing in, and that make oidc-provider
 * store or look up something, are limited per client address first: an
 * authorization request stores an interaction, a logout request looks up the
 * browser's session (src/oidc/anonymous-logout.ts answers one signed in to
 * nothing without storing anything). An IPv6 client is counted by its /64
 * (./address-key.ts). A refusal is a PosternError, answered by the app's
 * error handler (429, Retry-After, HTML or JSON). So is a method one of
 * oidc-provider's endpoints does not take (src/oidc/provider-routes.ts): 405
 * with Allow, where oidc-provider would answer 404; and a compressed body,
 * which oidc-provider would read as if it were not: 415.
 */
import type { Middleware } from 'koa';
import { createLimits } from '../accounts/limits.ts';
import { PosternError } from '../errors.ts';
import { oidcRouteOf } from '../oidc/create-provider.ts';
import { providerRouteOf } from '../oidc/provider-routes.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';
import type { EphemeralStore } from '../storage/types.ts';
import { addressKey } from './address-key.ts';
import { methodNotAllowed } from './method-not-allowed.ts';
import type { RequestState } from './request-context.ts';

/**
 * Authorization requests (`/auth`, GET or HEAD) per client address and
 * minute, across pools. Each may store a 30-minute interaction, so a script
 * must not make them without end; a person starts a handful of sign-ins a
 * minute, and sixty leaves room for an office behind one NAT. Not the PAR
 * endpoint: a relying app's server calls it for all of its users from one
 * address, and what it stores lives a minute.
 */
export const AUTHORIZATION_LIMIT = { points: 60, windowSeconds: 60 } as const;

/** Logout requests (`/session/end`, GET or HEAD) per client address and minute, across pools: as generous. */
export const END_SESSION_LIMIT = { points: 60, windowSeconds: 60 } as const;

export interface DispatchOptions {
  publicUrl: string;
  trustProxy: boolean;
  /** Where the per-address limits count (shared by every process of the server). */
  ephemeral: Pick<EphemeralStore, 'rateLimiter'>;
}

export function dispatchToProviders(
  registry: Pick<PoolRegistry, 'get'>,
  { publicUrl, trustProxy, ephemeral }: DispatchOptions,
): Middleware<RequestState & { route?: string }> {
  const { host, protocol } = new URL(publicUrl);
  const proto = protocol.slice(0, -1);
  // Keyed by oidc-provider's route name; a Map, so no request can name a prototype property.
  const limitedRoutes = new Map([
    ['authorization', { rule: { name: 'authorization-ip', ...AUTHORIZATION_LIMIT } }],
    ['end_session', { rule: { name: 'end-session-ip', ...END_SESSION_LIMIT } }],
  ]);
  const limits = createLimits(ephemeral);

  return async (ctx, next) => {
    const poolId = /^\/([a-z0-9-]+)(?:\/|$)/.exec(ctx.path)?.[1];
    const runtime = poolId ? registry.get(poolId) : undefined;
    if (!runtime || !poolId) return next();

    // The endpoint oidc-provider will run, found as its router finds it: `/AUTH` and
    // `/auth/` are the authorization endpoint too, and a GET route answers HEAD.
    const route = providerRouteOf(ctx.path.slice(poolId.length + 1) || '/');
    if (route && !route.methods.includes(ctx.method)) {
      // oidc-provider would answer 404 for its own endpoint: 405 with Allow (RFC 9110 §15.5.6),
      // or 204 to OPTIONS, as Postern's own routes answer (./method-not-allowed.ts).
      const allow = [...route.methods].sort().join(', ');
      ctx.state.route = `/:pool/oidc/${route.name}`;
      if (ctx.method !== 'OPTIONS') throw methodNotAllowed(allow);
      ctx.status = 204;
      ctx.set('Allow', allow);
      return;
    }
    assertIdentityCoding(ctx);

    const limit = route && limitedRoutes.get(route.name);
    if (route && limit && route.methods.includes(ctx.method)) {
      // The route a refusal is logged and counted under; oidc-provider's own, below, replaces it.
      ctx.state.route = `/:pool/oidc/${route.name}`;
      // An IPv6 client counts by its /64, which one attacker typically holds whole.
      await limits.enforce(limit.rule, addressKey(ctx.ip), () =>
        ctx.state.log.warn({ limit: `${route.name}_ip` }, 'rate limit reached'),
      );
    }

    const { req, res } = ctx;
    req.url = req.url?.slice(poolId.length + 1) || '/';
    if (!req.url.startsWith('/')) req.url = `/${req.url}`;
    req.headers.host = host;
    req.headers['x-forwarded-proto'] = proto;
    delete req.headers['x-forwarded-host'];
    // oidc-provider sees only the hop the trusted proxy appended, as Postern's own routes do.
    const forwardedFor = trustProxy ? lastHop(req.headers['x-forwarded-for']) : undefined;
    if (forwardedFor) req.headers['x-forwarded-for'] = forwardedFor;
    else delete req.headers['x-forwarded-for'];

    ctx.respond = false;
    await runtime.handle(req, res);
    ctx.state.route = `/:pool/oidc/${oidcRouteOf(req) ?? 'unmatched'}`;
  };
}

/**
 * oidc-provider reads a request body as it comes, whatever its
 * Content-Encoding says: a zstd-labelled body was read as plain text and
 * answered, a gzip one read as garbage. Only an uncompressed body is taken;
 * any other coding is 415 with `Accept-Encoding: identity`, the codings that
 * would have been accepted (RFC 9110 §15.5.16, §12.5.3). Postern's own JSON
 * APIs decompress gzip, deflate and br themselves (./json-body.ts); no OAuth
 * client compresses a form post, so oidc-provider's endpoints are not given a
 * decompressing parser in front (STACK.md).
 * @throws {PosternError} 415 invalid_request.
 */
function assertIdentityCoding(ctx: { request: { length?: number | undefined }; get(field: string): string }) {
  const hasBody = Boolean(ctx.request.length) || ctx.get('transfer-encoding') !== '';
  const codings = ctx
    .get('content-encoding')
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (!hasBody || codings.length === 0) return;
  throw new PosternError(415, 'invalid_request', 'Send the request body uncompressed.', {
    detail: `Content-Encoding: ${ctx.get('content-encoding').slice(0, 64)}`,
    headers: { 'Accept-Encoding': 'identity' },
  });
}

function lastHop(header: string | string[] | undefined): string | undefined {
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
  return hops[hops.length - 1]?.trim() || undefined;
}
