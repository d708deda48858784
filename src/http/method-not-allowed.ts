/**
 * A request to one of Postern's own routes with a method the route does not
 * take answers 405 with `Allow` (RFC 9110 §15.5.6), in the house format (JSON
 * or the HTML error page), instead of falling through to a 404. OPTIONS
 * answers 204 with `Allow` (RFC 9110 §9.3.7) and no CORS headers: Postern's
 * own routes are same-origin only, so a cross-origin preflight still fails.
 *
 * Paths that are no route of Postern's go on down the chain (static assets,
 * then the pool's oidc-provider, whose endpoints and CORS preflights are its
 * own), and so do routes under a pool that does not exist: those are a 404.
 * oidc-provider answers a wrong method with a 404 of its own, so its
 * endpoints get their 405 in ./pool-dispatch.ts, from the table of its routes
 * (src/oidc/provider-routes.ts), in the same format.
 */
import { type Layer, type Router, RouterEvents } from '@koa/router';
import { errorOf } from '../errors.ts';

/** RFC 9110 §15.5.6: the 405 lists what the resource does take. */
export const methodNotAllowed = (allow: string) =>
  errorOf('method_not_allowed', { headers: { Allow: allow } });

/**
 * Makes `router` answer 405 (or 204 to OPTIONS) for a path it routes with
 * other methods. Register after every route.
 *
 * `isPool(id)` says whether a route's `:pool` names a pool that exists.
 */
export function answerWrongMethods<S, C>(router: Router<S, C>, { isPool }: { isPool(id: string): boolean }) {
  router.on(RouterEvents.NotFound, (ctx, next) => {
    const routes = ((ctx as { matched?: Layer[] }).matched ?? []).filter((layer) => layer.methods.length > 0);
    if (routes.length === 0) return next();
    const poolId = /^\/([^/]+)/.exec(ctx.path)?.[1] ?? '';
    const underPool = routes.every((layer) => String(layer.path).startsWith('/:pool/'));
    if (underPool && !isPool(poolId)) return next();

    const allow = [...new Set(routes.flatMap((layer) => layer.methods))].sort().join(', ');
    // Metrics and the request log name the route that was asked for.
    (ctx.state as { route?: string }).route = String(routes[0]?.path);
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      ctx.set('Allow', allow);
      return;
    }
    throw methodNotAllowed(allow);
  });
}
