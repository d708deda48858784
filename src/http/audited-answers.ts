/**
 * The shape of every route of Postern's bearer-token APIs (self-service,
 * admin) and the enrolment page's calls: open the request's scope (which
 * authenticates it), run one use case, answer its result as JSON, and write
 * the request's audit trail once as it ends, also when the use case refuses
 * (a refusal is audited, then answered).
 *
 * A refusal stays the answer when its audit cannot be written: the failure
 * is logged, and the client gets the 4xx it earned, not a 500 about a store it
 * never asked for. A success whose audit cannot be written is an error, as
 * before: what changed must not go unrecorded without anyone hearing of it.
 */
import type { Context, Middleware } from 'koa';
import type { AuditTrail } from '../accounts/audit-trail.ts';
import type { RequestState } from './request-context.ts';

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
    let body: unknown;
    try {
      body = await answer(scope, ctx);
    } catch (refusal) {
      await scope.audit.flush().catch((error: unknown) => {
        (ctx.state as Partial<RequestState>).log?.error(
          { err: error },
          'the audit trail of a refused request was not written',
        );
      });
      throw refusal;
    }
    await scope.audit.flush();
    ctx.body = body;
    if (status) ctx.status = status;
  };
}
