/**
 * Organizations, their members, and the organization of each grant, in
 * PostgreSQL/PGlite (migrations/0008_organizations.ts).
 *
 * - Adding a member is one INSERT ... SELECT joining the user and the
 *   organization of the pool, ON CONFLICT DO NOTHING: either deleted
 *   meanwhile adds nothing, and two adds at once leave one row.
 * - An account's organizations are read with the account itself
 *   (`organizationsOfUser`, a subquery of users.findAccount), so a login
 *   decides its organization without another round trip.
 */
import type { Knex } from 'knex';
import type { Organization, OrganizationMember, OrganizationRepository } from '../types.ts';
import { changedRows, isUuid, toJsonb } from './column-values.ts';
import { withTranslatedErrors } from './translate-error.ts';

export interface OrganizationRow {
  id: string;
  pool_id: string;
  slug: string;
  name: string;
  passkey_login: boolean;
  require_mfa: boolean;
  allowed_first_factors: string[] | null;
  /** A Date from a table; an ISO string when the row came through json_agg. */
  created_at: Date | string;
  updated_at: Date | string;
}

export function toOrganization(row: OrganizationRow): Organization {
  return {
    id: row.id,
    poolId: row.pool_id,
    slug: row.slug,
    name: row.name,
    passkeyLogin: row.passkey_login,
    requireMfa: row.require_mfa,
    allowedFirstFactors: row.allowed_first_factors,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/**
 * A column holding, as JSON, the organizations the `users` row of a query
 * belongs to (ordered by slug): `organizations`.
 */
export function organizationsOfUser(db: Knex) {
  return db.raw(
    `coalesce((select json_agg(o order by o.slug) from organization_members m
       join organizations o on o.id = m.organization_id
       where m.pool_id = users.pool_id and m.user_id = users.id), '[]'::json) as organizations`,
  );
}

/** pg parses json columns; PGlite may hand back the text. */
export function organizationsOfRow(value: unknown): Organization[] {
  const rows = (typeof value === 'string' ? JSON.parse(value) : value) as OrganizationRow[];
  return rows.map(toOrganization);
}

const pageSize = (limit: number) => (Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0);

/**
 * The OrganizationRepository over knex. Driver errors leave it as typed storage errors.
 * @throws {UniqueViolationError} `organizations_pool_id_slug_unique` from create/update.
 * @throws {StoreUnavailableError} when the database is unreachable.
 */
export function createOrganizationRepository(db: Knex): OrganizationRepository {
  const organizations = () => db<OrganizationRow>('organizations');

  return withTranslatedErrors<OrganizationRepository>({
    async create(organization) {
      const [row] = await organizations()
        .insert({
          pool_id: organization.poolId,
          slug: organization.slug,
          name: organization.name,
          passkey_login: organization.passkeyLogin ?? true,
          require_mfa: organization.requireMfa ?? false,
          allowed_first_factors: toJsonb(organization.allowedFirstFactors) as never,
        })
        .returning('*');
      return toOrganization(row as OrganizationRow);
    },

    async find(poolId, idOrSlug) {
      const where = isUuid(idOrSlug) ? { id: idOrSlug } : { slug: idOrSlug };
      const row = await organizations()
        .where({ pool_id: poolId, ...where })
        .first();
      return row ? toOrganization(row) : undefined;
    },

    async list(poolId, { after, limit }) {
      if (after !== undefined && !isUuid(after)) return [];
      const count = pageSize(limit);
      if (count === 0) return [];
      const query = organizations().where({ pool_id: poolId });
      if (after !== undefined) query.where('id', '>', after);
      return (await query.orderBy('id').limit(count)).map(toOrganization);
    },

    async update(poolId, id, changes) {
      if (!isUuid(id)) return undefined;
      const columns: Record<string, unknown> = {};
      if (changes.slug !== undefined) columns.slug = changes.slug;
      if (changes.name !== undefined) columns.name = changes.name;
      if (changes.passkeyLogin !== undefined) columns.passkey_login = changes.passkeyLogin;
      if (changes.requireMfa !== undefined) columns.require_mfa = changes.requireMfa;
      if (changes.allowedFirstFactors !== undefined)
        columns.allowed_first_factors = toJsonb(changes.allowedFirstFactors);
      const [row] = await organizations()
        .where({ pool_id: poolId, id })
        .update({ ...columns, updated_at: db.fn.now() } as never)
        .returning('*');
      return row ? toOrganization(row as OrganizationRow) : undefined;
    },

    async delete(poolId, id) {
      if (!isUuid(id)) return false;
      // Memberships and grant records reference it ON DELETE CASCADE.
      return changedRows(await organizations().where({ pool_id: poolId, id }).delete()) === 1;
    },

    async addMember(poolId, organizationId, userId) {
      if (!isUuid(organizationId) || !isUuid(userId)) return 'not_found';
      const pair = db('organizations')
        .join('users', 'users.pool_id', 'organizations.pool_id')
        .where({ 'organizations.pool_id': poolId, 'organizations.id': organizationId, 'users.id': userId })
        .select('organizations.pool_id', 'organizations.id', 'users.id');
      const inserted = await db
        .into(db.raw('?? (??, ??, ??)', ['organization_members', 'pool_id', 'organization_id', 'user_id']))
        .insert(pair)
        .onConflict(['organization_id', 'user_id'])
        .ignore()
        .returning('user_id');
      if (inserted.length === 1) return 'added';
      const member = await db('organization_members')
        .where({ pool_id: poolId, organization_id: organizationId, user_id: userId })
        .first('user_id');
      return member ? 'already' : 'not_found';
    },

    async removeMember(poolId, organizationId, userId) {
      if (!isUuid(organizationId) || !isUuid(userId)) return false;
      const deleted = await db('organization_members')
        .where({ pool_id: poolId, organization_id: organizationId, user_id: userId })
        .delete();
      return changedRows(deleted) === 1;
    },

    async listMembers(poolId, organizationId, { after, limit }) {
      if (!isUuid(organizationId) || (after !== undefined && !isUuid(after))) return [];
      const count = pageSize(limit);
      if (count === 0) return [];
      const query = db('organization_members as m')
        .join('users', 'users.id', 'm.user_id')
        .where({ 'm.pool_id': poolId, 'm.organization_id': organizationId });
      if (after !== undefined) query.where('m.user_id', '>', after);
      const rows = await query
        .orderBy('m.user_id')
        .limit(count)
        .select('m.user_id', 'users.email', 'm.created_at');
      return rows.map(
        (row: { user_id: string; email: string; created_at: Date }): OrganizationMember => ({
          userId: row.user_id,
          email: row.email,
          addedAt: row.created_at,
        }),
      );
    },

    async listForUser(poolId, userId) {
      if (!isUuid(userId)) return [];
      const rows = await db('organization_members as m')
        .join('organizations as o', 'o.id', 'm.organization_id')
        .where({ 'm.pool_id': poolId, 'm.user_id': userId })
        .orderBy('o.slug')
        .select('o.*');
      return rows.map((row: OrganizationRow) => toOrganization(row));
    },

    async setGrantOrganization(poolId, grantId, membership) {
      return db.transaction(async (trx) => {
        await trx('grant_organizations').where({ pool_id: poolId, grant_id: grantId }).delete();
        if (!membership || !isUuid(membership.organizationId) || !isUuid(membership.userId)) return false;
        // Selected from the memberships of the pool: a non-member, or another pool's organization, records nothing.
        const member = trx('organization_members')
          .where({
            pool_id: poolId,
            organization_id: membership.organizationId,
            user_id: membership.userId,
          })
          .select('pool_id', trx.raw('?::text', [grantId]), 'organization_id', 'user_id');
        const inserted = await trx
          .into(
            trx.raw('?? (??, ??, ??, ??)', [
              'grant_organizations',
              'pool_id',
              'grant_id',
              'organization_id',
              'user_id',
            ]),
          )
          .insert(member)
          .returning('grant_id');
        return inserted.length === 1;
      });
    },

    async organizationOfGrant(poolId, grantId) {
      const row = await db('grant_organizations as g')
        .join('organizations as o', (on) =>
          on.on('o.id', 'g.organization_id').andOn('o.pool_id', 'g.pool_id'),
        )
        .where({ 'g.pool_id': poolId, 'g.grant_id': grantId })
        .first('o.*');
      return row ? toOrganization(row as OrganizationRow) : undefined;
    },
  });
}
