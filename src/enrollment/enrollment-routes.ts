/**
 * The enrolment page and its JSON calls, `/{pool}/enroll/{token}` (the link
 * an operator sends; README, "Enrolment links"). Routes are thin: open the
 * link (./enrollment-flow.ts refuses an unknown, replaced, used or expired
 * one), guard the body, call one use case, answer JSON, and write the
 * request's audit trail as it ends.
 *
 * The page gives the browser a random cookie, scoped to the pool's
 * enrolment paths; the code, the proof of the email and the ceremony are
 * bound to it, and it is renewed when the code is entered (a value planted
 * before the proof does not carry it).
 * JSON calls are same-origin `application/json` only (src/http/same-origin-json.ts).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { createAuditTrail } from '../accounts/audit-trail.ts';
import { invalidRequest, notFound, PosternError } from '../errors.ts';
import { passkeyNameField } from '../http/api-fields.ts';
import { auditedAnswers } from '../http/audited-answers.ts';
import { parseBody, readJsonBody } from '../http/json-body.ts';
import { sameOriginJson } from '../http/same-origin-json.ts';
import { CeremonyResponse } from '../interactions/request-schemas.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';
import type { AuditEventRepository } from '../storage/types.ts';
import { BROWSER_ID, type EnrollmentFlow, type EnrollmentScope, newBrowserId } from './enrollment-flow.ts';

export interface EnrollmentRoutesOptions {
  registry: Pick<PoolRegistry, 'get'>;
  flow: EnrollmentFlow;
  auditEvents: Pick<AuditEventRepository, 'appendMany'>;
  publicUrl: string;
  /** Renders the enrolment page: the link's email and state, or why it does not work. */
  renderPage(data: { poolName: string; base: string; error?: string }): string;
}

const BROWSER_COOKIE = 'postern_enroll';
const BROWSER_COOKIE_MAX_AGE_MS = 24 * 60 * 60 * 1000;

const Bodies = {
  empty: z.strictObject({}),
  code: z.strictObject({
    code: z
      .string()
      .trim()
      .regex(/^\d{6}$/, 'A code has 6 digits.'),
  }),
  verify: z.strictObject({ response: CeremonyResponse, name: passkeyNameField.optional() }),
} as const;

export function addEnrollmentRoutes(
  router: Router,
  { registry, flow, auditEvents, publicUrl, renderPage }: EnrollmentRoutesOptions,
) {
  const base = '/:pool/enroll/:token';
  const secure = publicUrl.startsWith('https:');
  const requireJson = sameOriginJson(publicUrl);

  /** Lax, not Strict: opening the link again from a webmail must keep this browser's code and proof. */
  const setBrowser = (ctx: Context, poolId: string, value: string) =>
    ctx.cookies.set(BROWSER_COOKIE, value, {
      path: `/${poolId}/enroll/`,
      httpOnly: true,
      sameSite: 'lax',
      secure,
      maxAge: BROWSER_COOKIE_MAX_AGE_MS,
      overwrite: true,
    });

  const poolOf = (ctx: Context) => {
    const runtime = registry.get(ctx.params.pool ?? '');
    if (!runtime) throw notFound('There is no such page.');
    return runtime.config;
  };

  async function scopeOf(ctx: Context): Promise<EnrollmentScope> {
    const pool = poolOf(ctx);
    const browser = ctx.cookies.get(BROWSER_COOKIE);
    if (!browser)
      throw invalidRequest('Open the link from your email again, in this browser.', 'no enrolment cookie');
    const audit = createAuditTrail(auditEvents, {
      poolId: pool.id,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent').slice(0, 512),
      detail: { via: 'enrollment_link' },
    });
    return flow.open(
      {
        pool,
        token: ctx.params.token ?? '',
        browser,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent').slice(0, 512),
        log: ctx.state.log,
      },
      audit,
    );
  }

  const answering = auditedAnswers(scopeOf);
  const bodyOf = <S extends z.ZodType>(ctx: Context, schema: S): z.output<S> =>
    parseBody(schema, (ctx.request as { body?: unknown }).body);

  router.get(base, async (ctx) => {
    const pool = poolOf(ctx);
    if (!BROWSER_ID.test(ctx.cookies.get(BROWSER_COOKIE) ?? '')) setBrowser(ctx, pool.id, newBrowserId());
    const page = { poolName: pool.display_name, base: `/${pool.id}/enroll/${ctx.params.token}` };
    ctx.type = 'html';
    try {
      // The same checks as every call, so a dead link says why at once.
      await flow.linkOf(pool, ctx.params.token ?? '');
      ctx.body = renderPage(page);
    } catch (error) {
      const shown = ['enrollment_link_invalid', 'passkeys_disabled'];
      if (!(error instanceof PosternError) || !shown.includes(error.code)) throw error;
      ctx.status = error.status;
      ctx.body = renderPage({ ...page, error: error.description });
    }
  });

  router.get(
    `${base}/state`,
    answering((scope) => flow.state(scope)),
  );
  router.post(
    `${base}/code/send`,
    requireJson,
    answering(async (scope, ctx) => {
      bodyOf(ctx, Bodies.empty);
      return flow.sendCode(scope);
    }),
  );
  router.post(
    `${base}/code/verify`,
    requireJson,
    answering(async (scope, ctx) => {
      const { state, browser } = await flow.verifyCode(scope, bodyOf(ctx, Bodies.code));
      setBrowser(ctx, scope.pool.id, browser);
      return state;
    }),
  );
  router.post(
    `${base}/passkey/options`,
    requireJson,
    answering(async (scope, ctx) => {
      bodyOf(ctx, Bodies.empty);
      return flow.passkeyOptions(scope);
    }),
  );
  // The body is read once the challenge is taken: a malformed one spends it too.
  router.post(
    `${base}/passkey/verify`,
    sameOriginJson(publicUrl, { readBody: false }),
    answering(async (scope, ctx) =>
      flow.passkeyVerify(scope, async () => parseBody(Bodies.verify, await readJsonBody(ctx))),
    ),
  );
}
