/**
 * 0002_passwords_recovery_codes — second factors and passwords (issue 4).
 *
 * - `users.password_hash`: an argon2id PHC string, null for users without a
 *   password. Kept out of the User object the rest of the code passes around.
 * - `users.enroll_prompted_at`: when the user last saw (and skipped) the offer
 *   to create a passkey, so a pool can ask again only after a while.
 * - `recovery_codes`: keyed hashes of single-use codes. Using one is an UPDATE
 *   guarded by `used_at IS NULL`, so of two concurrent uses exactly one wins.
 */
import type { Knex } from 'knex';

export const name = '0002_passwords_recovery_codes';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    table.text('password_hash').nullable();
    table.timestamp('password_changed_at', { useTz: true }).nullable();
    table.timestamp('enroll_prompted_at', { useTz: true }).nullable();
  });
  await knex.schema.createTable('recovery_codes', (table) => {
    table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    table.text('pool_id').notNullable();
    table.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    table.text('code_hash').notNullable();
    table.timestamp('used_at', { useTz: true }).nullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.unique(['pool_id', 'user_id', 'code_hash']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('recovery_codes');
  await knex.schema.alterTable('users', (table) => {
    table.dropColumn('enroll_prompted_at');
    table.dropColumn('password_changed_at');
    table.dropColumn('password_hash');
  });
}
