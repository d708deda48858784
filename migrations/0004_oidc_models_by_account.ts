/**
 * 0004_oidc_models_by_account — a user's grants and refresh tokens, found by
 * account (issue 8, item 2).
 *
 * Removing a passkey, changing the password, replacing recovery codes or a
 * recovery sign-in signs the user out everywhere else: every grant of the
 * account but the current browser's is revoked. `oidc_models.account_id` has
 * been written since 0001; this index makes "the account's grants" a lookup
 * instead of a scan of the pool.
 */
import type { Knex } from 'knex';

export const name = '0004_oidc_models_by_account';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_models', (table) => {
    table.index(['pool_id', 'account_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_models', (table) => {
    table.dropIndex(['pool_id', 'account_id']);
  });
}
