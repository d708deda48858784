/**
 * 0001_initial — the first schema: users, their passkeys, oidc-provider's
 * long-lived models (Grant, RefreshToken), each pool's signing keys and the
 * audit trail.
 *
 * Why these shapes:
 * - Every table carries `pool_id` and every unique constraint starts with it,
 *   so pools are isolated by construction (the same email or credential id may
 *   exist in two pools).
 * - `users.webauthn_user_id` is the WebAuthn user handle: random bytes, never
 *   the account id (https://www.w3.org/TR/webauthn-3/#sctn-user-handle-privacy).
 * - `passkeys.counter` is bigint: the signature counter is an unsigned 32-bit
 *   value (https://www.w3.org/TR/webauthn-3/#signature-counter), which overflows int4.
 * - `audit_events.user_id` has no foreign key: events must outlive the users
 *   they describe.
 * - `oidc_models` is indexed by grant (revocation) and expiry (the sweep).
 *
 * Constraint names are knex's defaults (`users_pool_id_email_unique`, ...);
 * UniqueViolationError carries them, so they are part of the contract.
 */
import type { Knex } from 'knex';

export const name = '0001_initial';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (table) => {
    table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    table.text('pool_id').notNullable();
    table.text('email').notNullable();
    table.boolean('email_verified').notNullable().defaultTo(false);
    table.text('name').nullable();
    table.text('webauthn_user_id').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.unique(['pool_id', 'email']);
    table.unique(['pool_id', 'webauthn_user_id']);
  });

  await knex.schema.createTable('passkeys', (table) => {
    table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    table.text('pool_id').notNullable();
    table.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    table.text('credential_id').notNullable();
    table.binary('public_key').notNullable();
    table.bigInteger('counter').notNullable().defaultTo(0);
    table.jsonb('transports').notNullable().defaultTo(knex.raw(`'[]'::jsonb`));
    table.text('aaguid').notNullable();
    table.boolean('backup_eligible').notNullable();
    table.boolean('backup_state').notNullable();
    table.boolean('uv_initialized').notNullable();
    table.text('attestation_format').notNullable();
    table.text('name').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('last_used_at', { useTz: true }).nullable();
    table.unique(['pool_id', 'credential_id']);
    table.index(['pool_id', 'user_id']);
  });

  await knex.schema.createTable('oidc_models', (table) => {
    table.text('pool_id').notNullable();
    table.text('model').notNullable();
    table.text('id').notNullable();
    table.text('grant_id').nullable();
    table.text('account_id').nullable();
    table.jsonb('payload').notNullable();
    table.timestamp('consumed_at', { useTz: true }).nullable();
    table.timestamp('expires_at', { useTz: true }).nullable();
    table.primary(['pool_id', 'model', 'id']);
    table.index(['pool_id', 'grant_id']);
    table.index(['expires_at']);
  });

  await knex.schema.createTable('signing_keys', (table) => {
    table.text('pool_id').notNullable();
    table.text('kid').notNullable();
    table.text('alg').notNullable();
    table.text('encrypted_jwk').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('retired_at', { useTz: true }).nullable();
    table.primary(['pool_id', 'kid']);
  });

  await knex.schema.createTable('audit_events', (table) => {
    table.bigIncrements('id').primary();
    table.text('pool_id').notNullable();
    table.timestamp('occurred_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.uuid('user_id').nullable();
    table.text('event').notNullable();
    table.text('outcome').notNullable();
    table.text('credential_id').nullable();
    table.text('ip').nullable();
    table.text('user_agent').nullable();
    table.jsonb('detail').nullable();
    table.index(['pool_id', 'occurred_at']);
    table.index(['pool_id', 'user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_events');
  await knex.schema.dropTable('signing_keys');
  await knex.schema.dropTable('oidc_models');
  await knex.schema.dropTable('passkeys');
  await knex.schema.dropTable('users');
}
