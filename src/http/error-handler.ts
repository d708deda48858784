/**
 * The one error handler for Postern's own routes: typed errors become their
 * status and code; a store outage becomes 503 naming nothing internal; Koa's
 * own client errors keep their 4xx; anything else is a bug, answered with a
 * bare 500; those three are answered with the catalogue's codes and
 * sentences (ERROR_CODES). The client gets JSON or an HTML page, whichever it
 * accepts; never a stack trace. The request's one log line (./request-log.ts)
 * says why: the code and detail of a refusal, the stack of a bug or an outage.
 */
import type { Middleware } from 'koa';
import { errorOf, PosternError } from '../errors.ts';
import { StoreUnavailableError } from '../storage/errors.ts';
import { type RequestState, recordFailure } from './request-context.ts';

export interface ErrorView {
  status: number;
  error: string;
  description: string;
  requestId: string;
}

export function errorHandler(renderHtml: (view: ErrorView, url: string) => string): Middleware<RequestState> {
  return async (ctx, next) => {
    try {
      await next();
    } catch (caught) {
      const answer = toPosternError(caught);
      const view: ErrorView = {
        status: answer.status,
        error: answer.code,
        description: answer.description,
        requestId: ctx.state.requestId,
      };
      recordFailure(
        ctx.req,
        // A bug's or an outage's log line carries what was thrown, with its stack.
        view.status >= 500
          ? { error: view.error, err: caught }
          : { error: view.error, detail: answer.detail },
        ctx.state.log,
      );

      ctx.status = view.status;
      ctx.set(answer.headers);
      if (ctx.accepts('json', 'html') === 'html') {
        ctx.type = 'html';
        ctx.body = renderHtml(view, ctx.originalUrl);
      } else {
        ctx.body = { error: view.error, error_description: view.description };
      }
    }
  };
}

/** The answer to a request a store outage stopped: try again in a few seconds (the stores recover by themselves). */
export const storeUnavailable = (): PosternError =>
  errorOf('temporarily_unavailable', { headers: { 'Retry-After': '5' } });

/** What the client is told: a PosternError as thrown, anything else as the catalogued error it stands for. */
export function toPosternError(error: unknown): PosternError {
  if (error instanceof PosternError) return error;
  if (error instanceof StoreUnavailableError) return storeUnavailable();
  // Koa and its body parser throw http-errors for client mistakes (bad JSON,
  // too large); only some are marked safe to show, so the sentence is ours.
  const status = (error as { status?: unknown } | null | undefined)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return errorOf('request_too_large');
    // Any 4xx Koa chose, not only invalid_request's own 400 and 415.
    return new PosternError(status, 'invalid_request', 'The request is malformed.');
  }
  return errorOf('server_error');
}
