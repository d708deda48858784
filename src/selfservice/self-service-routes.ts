/**
 * The self-service JSON API, `/{pool}/api/self/…` (CONTRACT.md, "Self-service
 * and admin APIs"). Routes are thin: authenticate the bearer access token of
 * this pool (src/oidc/bearer-token.ts), guard the body (zod), call one use
 * case of ./self-service.ts, answer JSON. Whatever the answer, success or
 * refusal, the request's audit trail is written once, as it ends.
 *
 * The token comes in the Authorization header only (RFC 6750 §2.1), never in
 * a cookie, so a cross-site request cannot carry it and no origin check is
 * needed. The token is checked before the body is read: a caller without one
 * learns nothing about what its body would have done. Bodies are JSON only,
 * at most 64 KB; a POST without any body counts as `{}`.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { notFound } from '../errors.ts';
import { passkeyNameField as passkeyName } from '../http/api-fields.ts';
import { auditedAnswers } from '../http/audited-answers.ts';
import { parseBody, readJsonBody } from '../http/json-body.ts';
import { CeremonyResponse, totpCode } from '../interactions/request-schemas.ts';
import { authenticateBearer } from '../oidc/bearer-token.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';
import type { SelfService } from './self-service.ts';
import { invalidToken, type SelfServiceScope } from './self-service-scope.ts';

export interface SelfServiceRoutesOptions {
  registry: Pick<PoolRegistry, 'get'>;
  service: SelfService;
}

const password = z.string().min(1, 'Enter a password.').max(1024, 'That password is too long.');

const Bodies = {
  empty: z.strictObject({}),
  registerVerify: z.strictObject({ response: CeremonyResponse, name: passkeyName.optional() }),
  rename: z.strictObject({ name: passkeyName }),
  password: z.strictObject({ password, current_password: password.optional() }),
  totpCode: z.strictObject({ code: totpCode }),
} as const;

export function addSelfServiceRoutes(router: Router, { registry, service }: SelfServiceRoutesOptions) {
  const base = '/:pool/api/self';

  async function scopeOf(ctx: Context): Promise<SelfServiceScope> {
    const runtime = registry.get(ctx.params.pool ?? '');
    if (!runtime) throw notFound('There is no such service.');
    const header = ctx.get('authorization');
    if (!header) throw invalidToken('no Authorization header', { missing: true });
    const token = await authenticateBearer(runtime.provider, header);
    if (!token) throw invalidToken('not a live bearer access token of a user of this pool');
    return service.scopeFor({
      pool: runtime.config,
      accountId: token.accountId,
      clientId: token.clientId,
      grantId: token.grantId,
      ...(token.authTime === undefined ? {} : { authTime: token.authTime }),
      ip: ctx.ip,
      userAgent: ctx.get('user-agent').slice(0, 512),
      log: ctx.state.log,
    });
  }

  /** The JSON body (`{}` when there is none), guarded by `schema`. */
  async function bodyOf<S extends z.ZodType>(ctx: Context, schema: S): Promise<z.output<S>> {
    return parseBody(schema, await readJsonBody(ctx));
  }

  const answering = auditedAnswers(scopeOf);

  router.get(
    base,
    answering((scope) => service.summary(scope)),
  );

  router.get(
    `${base}/passkeys`,
    answering((scope) => service.listPasskeys(scope)),
  );

  router.post(
    `${base}/passkeys/register/options`,
    answering(async (scope, ctx) => {
      await bodyOf(ctx, Bodies.empty);
      return service.registerOptions(scope);
    }),
  );

  router.post(
    `${base}/passkeys/register/verify`,
    answering(
      // The body is read once the challenge is taken: a malformed one spends it too.
      async (scope, ctx) => service.registerVerify(scope, () => bodyOf(ctx, Bodies.registerVerify)),
      201,
    ),
  );

  router.patch(
    `${base}/passkeys/:id`,
    answering(async (scope, ctx) =>
      service.renamePasskey(scope, ctx.params.id ?? '', await bodyOf(ctx, Bodies.rename)),
    ),
  );

  // 200 with what was signed out elsewhere (until issue 8: 204 without a body).
  router.delete(
    `${base}/passkeys/:id`,
    answering((scope, ctx) => service.deletePasskey(scope, ctx.params.id ?? '')),
  );

  // 200 with what was signed out elsewhere (until issue 8: 204 without a body).
  router.put(
    `${base}/password`,
    answering(async (scope, ctx) => service.setPassword(scope, await bodyOf(ctx, Bodies.password))),
  );

  router.post(
    `${base}/recovery-codes`,
    answering(async (scope, ctx) => {
      await bodyOf(ctx, Bodies.empty);
      return service.replaceRecoveryCodes(scope);
    }),
  );

  router.post(
    `${base}/totp/setup`,
    answering(async (scope, ctx) => {
      await bodyOf(ctx, Bodies.empty);
      return service.setupTotp(scope);
    }),
  );

  router.post(
    `${base}/totp/confirm`,
    answering(async (scope, ctx) => service.confirmTotp(scope, await bodyOf(ctx, Bodies.totpCode)), 201),
  );

  router.delete(
    `${base}/totp`,
    answering((scope) => service.removeTotp(scope)),
  );
}
