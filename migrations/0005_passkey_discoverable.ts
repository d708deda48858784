/**
 * 0005_passkey_discoverable — whether each passkey is a discoverable
 * credential (a resident key), for the admin API to show.
 *
 * Only discoverable credentials can sign in without a username
 * (https://www.w3.org/TR/webauthn-3/#client-side-discoverable-credential).
 * The browser may say so at registration (the credProps extension's `rk`,
 * https://www.w3.org/TR/webauthn-3/#sctn-authenticator-credential-properties-extension);
 * nothing in an assertion tells. Nullable: null is "unknown", which every
 * passkey registered before this migration is.
 */
import type { Knex } from 'knex';

export const name = '0005_passkey_discoverable';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('passkeys', (table) => {
    table.boolean('discoverable').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('passkeys', (table) => {
    table.dropColumn('discoverable');
  });
}
