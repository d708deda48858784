/**
 * The admin JSON API, `/{pool}/api/admin/…` (CONTRACT.md, "Self-service and
 * admin APIs"; the README has the reference). Routes are thin: authenticate
 * the token, count the request against its client's limit, guard the query
 * or body (zod), call one use case of ./admin-service.ts, answer JSON.
 *
 * Only a client-credentials token of this pool's own machine client with
 * the `admin` scope opens it (src/oidc/bearer-token.ts): a user's access
 * token, another pool's token or an unknown one is 401 invalid_token, a
 * machine token without `admin` 403 insufficient_scope. The token comes in
 * the Authorization header only (RFC 6750 §2.1), so no cross-site request
 * carries it; it is checked before the body is read.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { errorOf, invalidToken, notFound } from '../errors.ts';
import { emailField, passkeyNameField, personNameField } from '../http/api-fields.ts';
import { auditedAnswers } from '../http/audited-answers.ts';
import { parseBody, readJsonBody } from '../http/json-body.ts';
import { authenticateMachineToken } from '../oidc/bearer-token.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';
import type { RateLimitRule } from '../storage/types.ts';
import { addOrganizationRoutes } from './admin-organizations.ts';
import { PAGE_LIMIT } from './admin-scope.ts';
import type { AdminScope, AdminService } from './admin-service.ts';

export interface AdminRoutesOptions {
  registry: Pick<PoolRegistry, 'get'>;
  service: AdminService;
}

/** Requests per machine client: room for a sync job, not for a runaway loop. */
export const ADMIN_RATE_LIMIT: RateLimitRule = { name: 'admin_client', points: 1200, windowSeconds: 60 };

const ADMIN_SCOPE = 'admin';

const NEEDS_TOKEN = 'This API needs a client-credentials token of this pool’s admin client.';

const limit = z.coerce
  .number({ error: 'limit is a number.' })
  .int('limit is a whole number.')
  .min(1, 'limit is at least 1.')
  .max(PAGE_LIMIT.max, `limit is at most ${PAGE_LIMIT.max}.`)
  .default(PAGE_LIMIT.default);
const cursor = z.string().max(400).optional();

const Queries = {
  users: z.strictObject({ email: emailField.optional(), cursor, limit }),
  page: z.strictObject({ cursor, limit }),
  passkeys: z.strictObject({ user_id: z.string({ error: 'Name the user: ?user_id=…' }).max(100) }),
  none: z.strictObject({}),
} as const;

const Bodies = {
  empty: z.strictObject({}),
  createUser: z.strictObject({ email: emailField, name: personNameField.optional() }),
  // `display_name` is Scalekit's name for it; one of the two, not both.
  rename: z
    .strictObject({ name: passkeyNameField.optional(), display_name: passkeyNameField.optional() })
    .refine((body) => (body.name === undefined) !== (body.display_name === undefined), {
      error: 'Give the passkey a name: { "name": "…" }.',
    })
    .transform((body) => ({ name: (body.name ?? body.display_name)! })),
} as const;

export function addAdminRoutes(router: Router, { registry, service }: AdminRoutesOptions) {
  const base = '/:pool/api/admin';

  async function scopeOf(ctx: Context): Promise<AdminScope> {
    const runtime = registry.get(ctx.params.pool ?? '');
    if (!runtime) throw notFound('There is no such service.');
    const header = ctx.get('authorization');
    if (!header) throw invalidToken('no Authorization header', { missing: true, description: NEEDS_TOKEN });
    const token = await authenticateMachineToken(runtime.provider, header);
    if (!token)
      throw invalidToken('not a live client-credentials token of this pool', { description: NEEDS_TOKEN });
    // The pool file as it is now: a client that lost `admin` (or the grant) is refused at
    // once, not when its last token expires.
    const client = runtime.config.clients.find((candidate) => candidate.client_id === token.clientId);
    const allowed =
      client?.grant_types.includes('client_credentials') && client.scope.split(' ').includes(ADMIN_SCOPE);
    if (!allowed || !token.scope.split(' ').includes(ADMIN_SCOPE))
      throw errorOf('insufficient_scope', {
        description: 'This token was not granted the admin scope.',
        detail: `token of ${token.clientId} with scope "${token.scope}"`,
        headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${ADMIN_SCOPE}"` },
      });
    await service.limits.enforce(ADMIN_RATE_LIMIT, `${runtime.config.id}:${token.clientId}`);
    return service.scopeFor({
      pool: runtime.config,
      clientId: token.clientId,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent').slice(0, 512),
      log: ctx.state.log,
    });
  }

  const answering = auditedAnswers(scopeOf);
  const queryOf = <S extends z.ZodType>(ctx: Context, schema: S): z.output<S> => parseBody(schema, ctx.query);
  const bodyOf = async <S extends z.ZodType>(ctx: Context, schema: S): Promise<z.output<S>> =>
    parseBody(schema, await readJsonBody(ctx));
  const userId = (ctx: Context) => ctx.params.user_id ?? '';

  router.get(
    `${base}/users`,
    answering(async (scope, ctx) => service.listUsers(scope, queryOf(ctx, Queries.users))),
  );
  router.post(
    `${base}/users`,
    answering(async (scope, ctx) => service.createUser(scope, await bodyOf(ctx, Bodies.createUser)), 201),
  );
  router.get(
    `${base}/users/:user_id`,
    answering(async (scope, ctx) => {
      queryOf(ctx, Queries.none);
      return service.getUser(scope, userId(ctx));
    }),
  );
  router.delete(
    `${base}/users/:user_id`,
    answering(async (scope, ctx) => service.deleteUser(scope, userId(ctx))),
  );
  router.post(
    `${base}/users/:user_id/sessions/revoke`,
    answering(async (scope, ctx) => {
      await bodyOf(ctx, Bodies.empty);
      return service.revokeSessions(scope, userId(ctx));
    }),
  );
  router.get(
    `${base}/users/:user_id/events`,
    answering(async (scope, ctx) => service.listEvents(scope, userId(ctx), queryOf(ctx, Queries.page))),
  );
  router.get(
    `${base}/users/:user_id/passkeys`,
    answering(async (scope, ctx) => {
      queryOf(ctx, Queries.none);
      return service.listPasskeys(scope, userId(ctx));
    }),
  );
  // Scalekit's form of the same list.
  router.get(
    `${base}/passkeys`,
    answering(async (scope, ctx) => service.listPasskeys(scope, queryOf(ctx, Queries.passkeys).user_id)),
  );
  router.patch(
    `${base}/users/:user_id/passkeys/:id`,
    answering(async (scope, ctx) =>
      service.renamePasskey(scope, userId(ctx), ctx.params.id ?? '', await bodyOf(ctx, Bodies.rename)),
    ),
  );
  router.post(
    `${base}/users/:user_id/enrollment-link`,
    answering(async (scope, ctx) => {
      await bodyOf(ctx, Bodies.empty);
      return service.enrollmentLink(scope, userId(ctx));
    }, 201),
  );
  router.delete(
    `${base}/users/:user_id/totp`,
    answering(async (scope, ctx) => service.removeTotp(scope, userId(ctx))),
  );
  router.delete(
    `${base}/users/:user_id/passkeys/:id`,
    answering(async (scope, ctx) => service.deletePasskey(scope, userId(ctx), ctx.params.id ?? '')),
  );
  addOrganizationRoutes(router, {
    base,
    answering,
    pageQuery: Queries.page,
    organizations: service.organizations,
  });
}
