/**
 * 0003_hash_token_ids — refresh tokens are no longer stored as their own key
 * (issue 8, item 7).
 *
 * oidc-provider's opaque token is its id: until now `oidc_models.id` of a
 * RefreshToken row, and the `jti` inside its payload, were the very string a
 * client presents at the token endpoint, so whoever read the table (a backup,
 * a replica, a leaked dump) held working refresh tokens. From this version
 * the adapter (src/oidc/adapter.ts) stores bearer tokens under the hex
 * SHA-256 of the id and without `jti`; this migration rewrites the rows
 * written before it the same way, so refresh tokens issued before the upgrade
 * keep working (the adapter hashes what the client presents and finds them).
 *
 * The models are those the adapter hashes as of this migration; only
 * RefreshToken (and Grant, which is not hashed) is stored durably, the others
 * are listed so that no bearer token is left behind whatever was stored here.
 * Computed by the database itself (`sha256` is core PostgreSQL since 11, and
 * in PGlite): no row leaves it, and one UPDATE rewrites them all.
 */
import type { Knex } from 'knex';

export const name = '0003_hash_token_ids';

const HASHED_MODELS = ['AccessToken', 'AuthorizationCode', 'ClientCredentials', 'RefreshToken'];

export async function up(knex: Knex): Promise<void> {
  await knex('oidc_models')
    .whereIn('model', HASHED_MODELS)
    .update({
      id: knex.raw(`encode(sha256(convert_to(id, 'UTF8')), 'hex')`),
      payload: knex.raw(`payload - 'jti'`),
    });
}

/**
 * A hash cannot be turned back into the token, and the previous version looks
 * tokens up by their value: the hashed rows are deleted, so their holders sign
 * in again rather than presenting tokens nothing can find.
 */
export async function down(knex: Knex): Promise<void> {
  await knex('oidc_models').whereIn('model', HASHED_MODELS).delete();
}
