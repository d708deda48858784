/**
 * Hands `/{pool}/…` requests that Postern's own routes did not take to that
 * pool's oidc-provider, with the prefix stripped (oidc-provider learns it
 * through `ctx.mountPath`). The issuer's URLs must never come from the
 * client: Host and X-Forwarded-Proto are rewritten from public_url, and
 * X-Forwarded-For survives only when the operator trusts a proxy, cut to the
 * hop that proxy appended.
 *
 * Requests anyone can make without signing in, and that make oidc-provider
 * store something, are limited per client address first: an authorization
 * request stores an interaction, a logout request a session holding the
 * logout form's secret. A refusal is a PosternError, answered by the app's
 * error handler (429, Retry-After, HTML or JSON).
 */
import type { Middleware } from 'koa';
import { createLimits } from '../accounts/limits.ts';
import { oidcRouteOf } from '../oidc/create-provider.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';
import type { EphemeralStore } from '../storage/types.ts';
import type { RequestState } from './request-context.ts';

/**
 * Authorization requests (`/auth`, GET or POST) per client address and
 * minute, across pools. Each may store a 30-minute interaction, so a script
 * must not make them without end; a person starts a handful of sign-ins a
 * minute, and sixty leaves room for an office behind one NAT. Not the PAR
 * endpoint: a relying app's server calls it for all of its users from one
 * address, and what it stores lives a minute.
 */
export const AUTHORIZATION_LIMIT = { points: 60, windowSeconds: 60 } as const;

/** Logout requests (`/session/end`, GET or POST) per client address and minute, across pools: as generous. */
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
  // Keyed by the path under the pool; a Map, so no request path can name a prototype property.
  const limitedPaths = new Map([
    ['/auth', { name: 'authorization', rule: { name: 'authorization-ip', ...AUTHORIZATION_LIMIT } }],
    ['/session/end', { name: 'end_session', rule: { name: 'end-session-ip', ...END_SESSION_LIMIT } }],
  ]);
  const limits = createLimits(ephemeral);

  return async (ctx, next) => {
    const poolId = /^\/([a-z0-9-]+)(?:\/|$)/.exec(ctx.path)?.[1];
    const runtime = poolId ? registry.get(poolId) : undefined;
    if (!runtime || !poolId) return next();

    const limit = limitedPaths.get(ctx.path.slice(poolId.length + 1).replace(/(.)\/$/, '$1'));
    if (limit && (ctx.method === 'GET' || ctx.method === 'POST')) {
      // The route a refusal is logged and counted under; oidc-provider's own, below, replaces it.
      ctx.state.route = `/:pool/oidc/${limit.name}`;
      await limits.enforce(limit.rule, ctx.ip, () =>
        ctx.state.log.warn({ limit: `${limit.name}_ip` }, 'rate limit reached'),
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

function lastHop(header: string | string[] | undefined): string | undefined {
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
  return hops[hops.length - 1]?.trim() || undefined;
}
