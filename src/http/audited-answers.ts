/**
 * The shape of every route of Postern's bearer-token APIs (self-service,
 * admin): open the request's scope (which authenticates it), run one use
 * case, answer its result as JSON, and write the request's audit trail once
 * as it ends, also when the use case refuses (a refusal is audited, then
 * answered).
 */
import type { Context, Middleware } from 'koa';
import type { AuditTrail } from '../accounts/audit-trail.ts';

export type AnswerRoute<S> = (
  answer: (scope: S, ctx: Context) => Promise<unknown>,
  /** (Optional) The status of a success, when not 200 (201 for a creation). */
  status?: number,
) => Middleware;

/** Routes answering over the scope `scopeOf` opens; it throws for a request it refuses. */
export function auditedAnswers<S extends { audit: AuditTrail }>(
  scopeOf: (ctx: Context) => Promise<S>,
): AnswerRoute<S> {
  return (answer, status) => async (ctx) => {
    const scope = await scopeOf(ctx);
    try {
      ctx.body = await answer(scope, ctx);
      if (status) ctx.status = status;
    } finally {
      await scope.audit.flush();
    }
  };
}
