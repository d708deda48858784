/**
 * The guard of the JSON APIs Postern's own pages call with the browser's
 * cookies (the interaction API, the enrolment page): same-origin
 * `application/json` only. A cross-site form cannot send that content type,
 * and a cross-site fetch is named by its Origin header; both are refused
 * before the body is read. The body, read by ./json-body.ts, is left on
 * `ctx.request.body`, unless `readBody: false`: a ceremony's verification
 * reads it only after taking its challenge, so that a malformed body spends
 * the challenge too.
 */
import type { Context, Middleware, Next } from 'koa';
import { PosternError } from '../errors.ts';
import { readJsonBody } from './json-body.ts';

export function sameOriginJson(
  publicUrl: string,
  {
    readBody = true,
  }: {
    /** (Optional) false: check the origin and content type only; the route reads the body. Defaults to true. */
    readBody?: boolean;
  } = {},
): Middleware {
  const publicOrigin = new URL(publicUrl).origin;
  return async (ctx: Context, next: Next) => {
    const origin = ctx.get('origin');
    if (origin && origin !== publicOrigin) {
      throw new PosternError(403, 'invalid_origin', 'This request did not come from the sign-in page.', {
        detail: origin,
      });
    }
    if (!ctx.is('application/json')) {
      throw new PosternError(415, 'invalid_request', 'Send the request as application/json.');
    }
    if (readBody) (ctx.request as { body?: unknown }).body = await readJsonBody(ctx);
    await next();
  };
}
