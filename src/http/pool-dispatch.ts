/**
 * Hands `/{pool}/…` requests that Postern's own routes did not take to that
 * pool's oidc-provider, with the prefix stripped (oidc-provider learns it
 * through `ctx.mountPath`). The issuer's URLs must never come from the
 * client: Host and X-Forwarded-Proto are rewritten from public_url, and
 * X-Forwarded-For survives only when the operator trusts a proxy, cut to the
 * hop that proxy appended.
 */
import type { Middleware } from 'koa';
import { oidcRouteOf } from '../oidc/create-provider.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';

export function dispatchToProviders(
  registry: Pick<PoolRegistry, 'get'>,
  { publicUrl, trustProxy }: { publicUrl: string; trustProxy: boolean },
): Middleware<{ route?: string }> {
  const { host, protocol } = new URL(publicUrl);
  const proto = protocol.slice(0, -1);

  return async (ctx, next) => {
    const poolId = /^\/([a-z0-9-]+)(?:\/|$)/.exec(ctx.path)?.[1];
    const runtime = poolId ? registry.get(poolId) : undefined;
    if (!runtime || !poolId) return next();

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
