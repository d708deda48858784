/**
 * The one error handler for Postern's own routes: typed errors become their
 * status and code; a store outage becomes 503 naming nothing internal; Koa's
 * own client errors keep their 4xx; anything else is a bug, answered with a
 * bare 500. The client gets JSON or an HTML page, whichever it accepts; never
 * a stack trace. The request's one log line (./request-log.ts) says why: the
 * code and detail of a refusal, the stack of a bug or an outage.
 */
import type { Middleware } from 'koa';
import { PosternError } from '../errors.ts';
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
      const view = toErrorView(caught, ctx.state.requestId);
      recordFailure(
        ctx.req,
        view.status >= 500
          ? { error: view.error, err: caught }
          : { error: view.error, detail: (caught as PosternError).detail },
        ctx.state.log,
      );

      ctx.status = view.status;
      if (caught instanceof PosternError) ctx.set(caught.headers);
      if (caught instanceof StoreUnavailableError) ctx.set('Retry-After', '5');
      if (ctx.accepts('json', 'html') === 'html') {
        ctx.type = 'html';
        ctx.body = renderHtml(view, ctx.originalUrl);
      } else {
        ctx.body = { error: view.error, error_description: view.description };
      }
    }
  };
}

function toErrorView(error: unknown, requestId: string): ErrorView {
  if (error instanceof PosternError) {
    return { status: error.status, error: error.code, description: error.description, requestId };
  }
  if (error instanceof StoreUnavailableError) {
    return {
      status: 503,
      error: 'temporarily_unavailable',
      description: 'Sign-in is briefly unavailable. Please try again in a moment.',
      requestId,
    };
  }
  // Koa and its body parser throw http-errors for client mistakes (bad JSON,
  // too large); only some are marked safe to show, so the sentence is ours.
  const { status } = error as { status?: number };
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return status === 413
      ? { status, error: 'request_too_large', description: 'The request is too large.', requestId }
      : { status, error: 'invalid_request', description: 'The request is malformed.', requestId };
  }
  return { status: 500, error: 'server_error', description: 'Something went wrong on our side.', requestId };
}
