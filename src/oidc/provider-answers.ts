/**
 * oidc-provider's answers when something fails, made the house's (issue 12):
 *
 * - It saves a session its endpoint touched after that endpoint's own error
 *   handler has run (ensureSessionSave), so a store failing there, say at
 *   the resume after a sign-in, escaped to Koa's bare "Service Unavailable"
 *   text. Such an error is answered here as Postern's own routes answer it
 *   (../http/error-handler.ts): 503 temporarily_unavailable with
 *   Retry-After, or 500 server_error, as a page or JSON.
 * - Its handlers name every error they may not show server_error ("oops!
 *   something went wrong"), a store outage they answer 503 included: that
 *   answer says temporarily_unavailable, and when to try again.
 * - No endpoint matched: the house 404, not Koa's text.
 */
import type { ParameterizedContext } from 'koa';
import { storeUnavailable, toPosternError } from '../http/error-handler.ts';

/** The provider's Koa context: `oidc` exists once an endpoint matched. */
type ProviderContext = ParameterizedContext & { oidc?: { route?: string } };

export interface ProviderErrorView {
  error: string;
  description: string;
  status: number;
}

/** Sets an error answer: JSON for an API client, else the page `page` renders. */
export type AnswerError = (ctx: ProviderContext, view: ProviderErrorView) => void;

export function answerError(page: (ctx: ProviderContext, view: ProviderErrorView) => string): AnswerError {
  return (ctx, view) => {
    ctx.status = view.status;
    if (ctx.accepts('json', 'html') === 'json') {
      ctx.body = { error: view.error, error_description: view.description };
    } else {
      ctx.type = 'html';
      ctx.body = page(ctx, view);
    }
  };
}

/** Runs the provider's middleware `next`, answering what fails past its error handlers. */
export async function withHouseAnswers(
  ctx: ProviderContext,
  next: () => Promise<unknown>,
  { answer, onServerError }: { answer: AnswerError; onServerError(error: unknown): void },
): Promise<void> {
  try {
    await next();
  } catch (caught) {
    onServerError(caught);
    const posternError = toPosternError(caught);
    // The endpoint may have decided a redirect (with a code in it) before the failure.
    ctx.remove('Location');
    ctx.set(posternError.headers);
    answer(ctx, {
      error: posternError.code,
      description: posternError.description,
      status: posternError.status,
    });
    return;
  }
  if (ctx.status === 503) {
    const unavailable = storeUnavailable();
    for (const [name, value] of Object.entries(unavailable.headers)) if (!ctx.get(name)) ctx.set(name, value);
    const body = ctx.body as { error?: unknown } | undefined;
    if (body && typeof body === 'object' && body.error === 'server_error') {
      ctx.body = { error: unavailable.code, error_description: unavailable.description };
    }
  }
  if (!ctx.oidc?.route && ctx.status === 404 && ctx.body === undefined) {
    answer(ctx, { error: 'not_found', description: 'There is no such page.', status: 404 });
  }
}
