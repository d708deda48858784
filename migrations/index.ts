/**
 * The ordered list of schema migrations. The knex CLI cannot load `.ts`, so
 * the store hands knex this static list as its `migrationSource` and
 * `postern migrate` runs it.
 *
 * Append-only: never edit or reorder a migration that has shipped; add a new
 * one (`0002_...ts`) at the end of the list with a header comment saying why.
 */
import type { Knex } from 'knex';
import * as initial from './0001_initial.ts';
import * as passwordsRecoveryCodes from './0002_passwords_recovery_codes.ts';
import * as hashTokenIds from './0003_hash_token_ids.ts';
import * as oidcModelsByAccount from './0004_oidc_models_by_account.ts';
import * as passkeyDiscoverable from './0005_passkey_discoverable.ts';
import * as enrollmentLinks from './0006_enrollment_links.ts';
import * as totpCredentials from './0007_totp_credentials.ts';
import * as organizations from './0008_organizations.ts';

export interface Migration {
  /** Recorded in `knex_migrations.name`; never rename one that has shipped. */
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

export const migrations: Migration[] = [
  initial,
  passwordsRecoveryCodes,
  hashTokenIds,
  oidcModelsByAccount,
  passkeyDiscoverable,
  enrollmentLinks,
  totpCredentials,
  organizations,
];
