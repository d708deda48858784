/**
 * Organizations through `/{pool}/api/admin/organizations…`: list, create,
 * read, change and delete a pool's organizations, list their members, add
 * and remove one. Mounted by ./admin-routes.ts behind the same token check,
 * rate limit and audit trail as the users routes; the use cases, and the
 * validation of every body, are src/organizations/organization-service.ts,
 * shared with `postern orgs`.
 *
 * `{organization}` is an organization's id or its slug; a handle of neither
 * shape names no organization and is answered 404 before any lookup (it may
 * hold what PostgreSQL refuses to compare, such as U+0000).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { ORGANIZATION_SLUG } from '../config/schema.ts';
import { assertThat, notFound } from '../errors.ts';
import type { AnswerRoute } from '../http/audited-answers.ts';
import { parseBody, readJsonBody } from '../http/json-body.ts';
import type { OrganizationService } from '../organizations/organization-service.ts';
import type { AdminScope } from './admin-scope.ts';

export interface OrganizationRoutesOptions {
  /** `/:pool/api/admin`. */
  base: string;
  answering: AnswerRoute<AdminScope>;
  /** The query of a paged list (`cursor`, `limit`), as the users list takes it. */
  pageQuery: z.ZodType<{ cursor?: string | undefined; limit: number }>;
  organizations: OrganizationService;
}

const none = z.strictObject({});

/** An organization's id, as the repository reads one (a UUID, any case). */
const ORGANIZATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The `{organization}` of the path: an id or a slug.
 * @throws {PosternError} 404 not_found for a handle of neither shape.
 */
function organizationHandle(ctx: Context): string {
  const handle = ctx.params.organization ?? '';
  assertThat(ORGANIZATION_ID.test(handle) || ORGANIZATION_SLUG.test(handle), () =>
    notFound('There is no such organization.'),
  );
  return handle;
}

export function addOrganizationRoutes(
  router: Router,
  { base, answering, pageQuery, organizations }: OrganizationRoutesOptions,
) {
  const path = `${base}/organizations`;
  const queryOf = <S extends z.ZodType>(ctx: Context, schema: S): z.output<S> => parseBody(schema, ctx.query);
  const organization = organizationHandle;
  const userId = (ctx: Context) => ctx.params.user_id ?? '';

  router.get(
    path,
    answering(async (scope, ctx) => organizations.listOrganizations(scope, queryOf(ctx, pageQuery))),
  );
  router.post(
    path,
    answering(async (scope, ctx) => organizations.createOrganization(scope, await readJsonBody(ctx)), 201),
  );
  router.get(
    `${path}/:organization`,
    answering(async (scope, ctx) => {
      queryOf(ctx, none);
      return organizations.getOrganization(scope, organization(ctx));
    }),
  );
  router.patch(
    `${path}/:organization`,
    answering(async (scope, ctx) =>
      organizations.updateOrganization(scope, organization(ctx), await readJsonBody(ctx)),
    ),
  );
  router.delete(
    `${path}/:organization`,
    answering(async (scope, ctx) => {
      await organizations.deleteOrganization(scope, organization(ctx));
      return null;
    }, 204),
  );
  router.get(
    `${path}/:organization/members`,
    answering(async (scope, ctx) =>
      organizations.listMembers(scope, organization(ctx), queryOf(ctx, pageQuery)),
    ),
  );
  // PUT: adding is idempotent, 201 the first time, 200 after.
  router.put(
    `${path}/:organization/members/:user_id`,
    answering(async (scope, ctx) => {
      parseBody(none, await readJsonBody(ctx));
      const { added, membership } = await organizations.addMember(scope, organization(ctx), userId(ctx));
      ctx.status = added ? 201 : 200;
      return membership;
    }),
  );
  router.delete(
    `${path}/:organization/members/:user_id`,
    answering(async (scope, ctx) => {
      await organizations.removeMember(scope, organization(ctx), userId(ctx));
      return null;
    }, 204),
  );
}
