/**
 * 0008_organizations — organizations inside a pool (a B2B app's customers),
 * their members, and the organization each grant was signed in for.
 *
 * - `organizations`: `slug` is the operator's handle (the `organization`
 *   authorization parameter, a client's binding in the pool file), unique in
 *   the pool; `id` is what tokens carry (`org_id`). The login settings can
 *   only tighten the pool's: `passkey_login`, `require_mfa`, and
 *   `allowed_first_factors` (JSON array of factor names; null: the pool's).
 * - `organization_members`: a user belongs to zero or more organizations of
 *   their pool; rows go with the user or the organization (cascade).
 * - `grant_organizations`: the organization a grant's login was for, so a
 *   refresh token's ID token and userinfo name the same organization as the
 *   first ID token. It references the membership (organization and user):
 *   a member removed, or an organization deleted, takes the record along,
 *   and no record names a non-member. Grants live in `oidc_models` (no
 *   foreign key: their ids are oidc-provider's); the sweep removes rows
 *   whose grant is gone.
 */
import type { Knex } from 'knex';

export const name = '0008_organizations';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('organizations', (table) => {
    table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    table.text('pool_id').notNullable();
    table.text('slug').notNullable();
    table.text('name').notNullable();
    table.boolean('passkey_login').notNullable().defaultTo(true);
    table.boolean('require_mfa').notNullable().defaultTo(false);
    table.jsonb('allowed_first_factors').nullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.unique(['pool_id', 'slug']);
  });
  await knex.schema.createTable('organization_members', (table) => {
    table.text('pool_id').notNullable();
    table.uuid('organization_id').notNullable().references('id').inTable('organizations').onDelete('CASCADE');
    table.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.primary(['organization_id', 'user_id']);
    table.index(['pool_id', 'user_id']);
  });
  await knex.schema.createTable('grant_organizations', (table) => {
    table.text('pool_id').notNullable();
    table.text('grant_id').notNullable();
    table.uuid('organization_id').notNullable();
    table.uuid('user_id').notNullable();
    table.primary(['pool_id', 'grant_id']);
    table
      .foreign(['organization_id', 'user_id'])
      .references(['organization_id', 'user_id'])
      .inTable('organization_members')
      .onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('grant_organizations');
  await knex.schema.dropTable('organization_members');
  await knex.schema.dropTable('organizations');
}
