/**
 * Gives every request an id and a logger that stamps it on every line. The id
 * is also attached to the raw request, because oidc-provider's pages and
 * error hooks see only that, and is returned in `X-Request-Id` so a user's
 * report can be matched to the logs. Why a request failed is noted here too
 * (by the error handler, or oidc-provider's server_error hook), for the one
 * line that logs the request when it is done (./request-log.ts).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import type { Logger } from '../logging/create-logger.ts';

const CONTEXT = Symbol('postern.request');

interface RequestContext {
  id: string;
  log: Logger;
  failure?: RequestFailure;
}

/** Why a request failed: its error code, and the log-only detail or the Error behind it. */
export interface RequestFailure {
  error: string;
  detail?: string | undefined;
  /** A bug or an outage: logged with its stack. */
  err?: unknown;
}

export interface RequestState {
  requestId: string;
  log: Logger;
}

/** The request's id and logger; a fallback logger for requests that bypassed the middleware. */
export function requestContextOf(req: IncomingMessage, fallback: Logger): RequestContext {
  return (req as IncomingMessage & { [CONTEXT]?: RequestContext })[CONTEXT] ?? { id: 'none', log: fallback };
}

/**
 * Notes why `req` failed, for its request line. A request that bypassed the
 * middleware has no line, so the failure is logged at once with `fallback`.
 */
export function recordFailure(req: IncomingMessage, failure: RequestFailure, fallback: Logger): void {
  const context = (req as IncomingMessage & { [CONTEXT]?: RequestContext })[CONTEXT];
  if (context) context.failure = failure;
  else fallback.error(failure, 'request failed');
}

/** What `recordFailure` noted for `req`, if anything. */
export function failureOf(req: IncomingMessage): RequestFailure | undefined {
  return (req as IncomingMessage & { [CONTEXT]?: RequestContext })[CONTEXT]?.failure;
}

/** An incoming X-Request-Id is kept only from a trusted proxy, and only if it looks like an id. */
const INCOMING_ID = /^[\w.:-]{8,128}$/;

export function requestContext(
  logger: Logger,
  { trustProxy }: { trustProxy: boolean },
): Middleware<RequestState> {
  return async (ctx, next) => {
    const incoming = trustProxy ? ctx.get('x-request-id') : '';
    const id = INCOMING_ID.test(incoming) ? incoming : randomUUID();
    const log = logger.child({ req_id: id });
    (ctx.req as IncomingMessage & { [CONTEXT]?: RequestContext })[CONTEXT] = { id, log };
    ctx.state.requestId = id;
    ctx.state.log = log;
    ctx.set('X-Request-Id', id);
    await next();
  };
}
