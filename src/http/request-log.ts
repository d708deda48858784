/**
 * One log line per request, written when it is done: `GET /path 200 3ms`,
 * with method, path, route, status and duration as fields, and why it failed
 * when it did (the code and detail of a refusal, the stack of a bug; noted by
 * the error handler or oidc-provider's server_error hook through
 * `recordFailure`). Nothing else logs a request.
 *
 * Levels: a 5xx is an error; health checks, metrics scrapes and static assets
 * that succeed are debug (they come every few seconds, or with every page);
 * the rest is info.
 */
import type { Middleware } from 'koa';
import { failureOf, type RequestState } from './request-context.ts';

/**
 * The path as logged: an enrolment link's token is a credential (only its
 * hash is stored), so it is cut to a prefix that still tells links apart.
 */
export function loggedPath(path: string): string {
  return path.replace(/^(\/[a-z0-9-]+\/enroll\/)([A-Za-z0-9_-]{6})[A-Za-z0-9_-]*/, '$1$2…');
}

/** Paths polled by machines or fetched with every page: debug. */
function isQuiet(path: string): boolean {
  return path === '/healthz' || path === '/readyz' || path === '/metrics' || path.startsWith('/assets/');
}

export function logRequests(): Middleware<RequestState & { route?: string }> {
  return async (ctx, next) => {
    const started = performance.now();
    const path = loggedPath(ctx.path); // before pool dispatch strips the prefix
    try {
      await next();
    } finally {
      // oidc-provider answers on the raw response (ctx.respond is false there).
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      const ms = Math.round(performance.now() - started);
      const failure = failureOf(ctx.req);
      const line = { method: ctx.method, path, route: ctx.state.route, status, ms, ...failure };
      const message = `${ctx.method} ${path} ${status} ${ms}ms`;
      if (status >= 500) ctx.state.log.error(line, message);
      else if (status < 400 && isQuiet(path)) ctx.state.log.debug(line, message);
      else ctx.state.log.info(line, message);
    }
  };
}
