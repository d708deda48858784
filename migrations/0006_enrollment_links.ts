/**
 * 0006_enrollment_links — one-time links an operator sends a user to create a
 * passkey (issue 10: the admin API's enrolment links, `postern users create`,
 * and how `registration.mode: invite_only` pools admit users).
 *
 * - Durable, not in Redis: a link is mailed and may be opened a day later;
 *   it must survive a restart or a failover of the ephemeral store.
 * - Only a hash of the token is stored (like refresh tokens, 0003): a copy of
 *   the database holds no working link.
 * - One link per user (`pool_id, user_id` unique): issuing a new one replaces
 *   the row, so the earlier link stops working at once.
 * - `used_at` keeps a used link's row, so opening it again says "already
 *   used" instead of "unknown"; it goes with the user (cascade) or with the
 *   next link.
 */
import type { Knex } from 'knex';

export const name = '0006_enrollment_links';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('enrollment_links', (table) => {
    table.text('token_hash').primary();
    table.text('pool_id').notNullable();
    table.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    /** Who issued it: `admin:{client_id}` or `cli`. */
    table.text('created_by').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('expires_at', { useTz: true }).notNullable();
    table.timestamp('used_at', { useTz: true }).nullable();
    table.unique(['pool_id', 'user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('enrollment_links');
}
