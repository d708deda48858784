/**
 * 0007_totp_credentials — time-based one-time passwords (RFC 6238) as a
 * second factor.
 *
 * - One TOTP per user (primary key `pool_id, user_id`): enrolling again
 *   replaces the row, so the earlier authenticator app stops working at once.
 * - `sealed_secret`: the shared secret sealed by the layer above
 *   (src/secrets/); a copy of the database holds no secret that mints codes.
 * - `last_used_step`: the RFC 6238 time step of the last accepted code.
 *   Accepting one is a compare-and-set UPDATE (`last_used_step IS NULL OR
 *   last_used_step < step`), so a code works once, even for two requests at
 *   the same moment (RFC 6238 §5.2: "MUST NOT accept the second attempt").
 * - It goes with the user (cascade), like passkeys and recovery codes.
 */
import type { Knex } from 'knex';

export const name = '0007_totp_credentials';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('totp_credentials', (table) => {
    table.text('pool_id').notNullable();
    table.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    table.text('sealed_secret').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.bigInteger('last_used_step').nullable();
    table.primary(['pool_id', 'user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('totp_credentials');
}
