/**
 * Users in PostgreSQL/PGlite.
 *
 * Emails are normalised (trimmed, lowercased) on the way in and on lookup, and
 * unique per pool by constraint (`users_pool_id_email_unique`), so two sign-ups
 * racing for one address end with exactly one user. Each user gets a random
 * WebAuthn user handle here, never derived from the account id
 * (https://www.w3.org/TR/webauthn-3/#sctn-user-handle-privacy).
 */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { normaliseEmail } from '../../accounts/email.ts';
import type { Account, NewUser, User, UserRepository } from '../types.ts';
import { changedRows, isUuid, toNumber } from './column-values.ts';
import { organizationsOfRow, organizationsOfUser } from './organization-repository.ts';
import { holdPoolCeiling, insertPasskey } from './passkey-repository.ts';
import { withTranslatedErrors } from './translate-error.ts';

export interface UserRow {
  id: string;
  pool_id: string;
  email: string;
  email_verified: boolean;
  name: string | null;
  webauthn_user_id: string;
  password_hash: string | null;
  enroll_prompted_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    poolId: row.pool_id,
    email: row.email,
    emailVerified: row.email_verified,
    name: row.name,
    webauthnUserId: row.webauthn_user_id,
    enrollPromptedAt: row.enroll_prompted_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

async function insertUser(db: Knex | Knex.Transaction, user: NewUser): Promise<User> {
  const [row] = await db('users')
    .insert({
      pool_id: user.poolId,
      email: normaliseEmail(user.email),
      email_verified: user.emailVerified ?? false,
      name: user.name ?? null,
      // 32 random bytes: the WebAuthn user handle (at most 64 bytes, no PII).
      webauthn_user_id: user.webauthnUserId ?? randomBytes(32).toString('base64url'),
      ...(user.passwordHash ? { password_hash: user.passwordHash, password_changed_at: db.fn.now() } : {}),
    })
    .returning('*');
  return toUser(row as UserRow);
}

/** A user row with the counts `enrolmentCounts` adds. */
export type AccountRow = UserRow & {
  passkey_count: string | number;
  recovery_code_count: string | number;
  has_totp: boolean;
  organizations: unknown;
};

/**
 * Columns counting what the `users` row of a query enrolled (its passkeys,
 * its unused recovery codes, whether it has a TOTP, its organizations): subqueries, so the
 * account is still read in one query.
 */
export function enrolmentCounts(db: Knex) {
  return [
    db('passkeys as owned')
      .whereRaw('owned.pool_id = users.pool_id and owned.user_id = users.id')
      .count('*')
      .as('passkey_count'),
    db('recovery_codes')
      .whereRaw('recovery_codes.pool_id = users.pool_id and recovery_codes.user_id = users.id')
      .whereNull('recovery_codes.used_at')
      .count('*')
      .as('recovery_code_count'),
    db.raw(
      'exists (select 1 from totp_credentials where totp_credentials.pool_id = users.pool_id and totp_credentials.user_id = users.id) as has_totp',
    ),
    organizationsOfUser(db),
  ];
}

export function toAccount(row: AccountRow): Account {
  return {
    user: toUser(row),
    passkeys: toNumber(row.passkey_count),
    unusedRecoveryCodes: toNumber(row.recovery_code_count),
    hasPassword: row.password_hash !== null,
    hasTotp: row.has_totp,
    organizations: organizationsOfRow(row.organizations),
  };
}

/**
 * The UserRepository over knex. Driver errors leave it as typed storage errors.
 * @throws {UniqueViolationError} `users_pool_id_email_unique` when the email is taken in the pool,
 *   `passkeys_pool_id_credential_id_unique` from `createWithPasskey` when the credential id is.
 * @throws {LimitExceededError} (scope `per_pool`) from `createWithPasskey` at the pool's `maxPerPool`.
 * @throws {StoreUnavailableError} when the database is unreachable.
 */
export function createUserRepository(db: Knex): UserRepository {
  const findOne = async (where: Partial<UserRow>): Promise<User | undefined> => {
    const row = await db<UserRow>('users').where(where).first();
    return row ? toUser(row) : undefined;
  };

  return withTranslatedErrors<UserRepository>({
    create(user) {
      return insertUser(db, user);
    },

    createWithPasskey(user, passkey, { maxPerPool } = {}) {
      // Sign-up lands whole or not at all: a taken credential id rolls the user back,
      // and a full pool refuses before the user is written.
      return db.transaction(async (trx) => {
        if (maxPerPool !== undefined) await holdPoolCeiling(trx, user.poolId, maxPerPool);
        const created = await insertUser(trx, user);
        const createdPasskey = await insertPasskey(trx, {
          ...passkey,
          poolId: created.poolId,
          userId: created.id,
        });
        return { user: created, passkey: createdPasskey };
      });
    },

    async findById(poolId, id) {
      return isUuid(id) ? findOne({ pool_id: poolId, id }) : undefined;
    },

    async findAccount(poolId, id) {
      if (!isUuid(id)) return undefined;
      const row = await db('users')
        .where({ 'users.pool_id': poolId, 'users.id': id })
        .first('users.*', ...enrolmentCounts(db));
      return row ? toAccount(row as AccountRow) : undefined;
    },

    findByEmail(poolId, email) {
      return findOne({ pool_id: poolId, email: normaliseEmail(email) });
    },

    findByWebauthnUserId(poolId, webauthnUserId) {
      return findOne({ pool_id: poolId, webauthn_user_id: webauthnUserId });
    },

    async getPasswordHash(poolId, userId) {
      if (!isUuid(userId)) return undefined;
      const row = await db<UserRow>('users').where({ pool_id: poolId, id: userId }).first('password_hash');
      return row?.password_hash ?? undefined;
    },

    async setPasswordHash(poolId, userId, hash) {
      if (!isUuid(userId)) return false;
      const result = await db('users')
        .where({ pool_id: poolId, id: userId })
        .update({ password_hash: hash, password_changed_at: db.fn.now(), updated_at: db.fn.now() });
      return changedRows(result) === 1;
    },

    async recordEnrollPrompt(poolId, userId, at) {
      if (!isUuid(userId)) return;
      await db('users').where({ pool_id: poolId, id: userId }).update({ enroll_prompted_at: at });
    },

    async list(poolId, { after, limit }) {
      // A cursor that is no uuid would make Postgres fail (22P02); no user comes after it.
      if (after !== undefined && !isUuid(after)) return [];
      const count = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0;
      if (count === 0) return [];
      const query = db<UserRow>('users').where({ pool_id: poolId });
      if (after !== undefined) query.where('id', '>', after);
      // uuids compare byte by byte, which is the order of their lowercase text.
      const rows = await query.orderBy('id').limit(count);
      return rows.map(toUser);
    },

    async delete(poolId, id) {
      if (!isUuid(id)) return false;
      return db.transaction(async (trx) => {
        // passkeys.user_id, recovery_codes.user_id and totp_credentials.user_id
        // reference users ON DELETE CASCADE (migrations 0001, 0002, 0007):
        // deleting the row takes them with it, and the password hash is a
        // column of the row.
        const deleted = await trx('users').where({ pool_id: poolId, id }).delete();
        if (changedRows(deleted) === 0) return false;
        // oidc_models has no foreign key (account_id is oidc-provider's text);
        // the durable rows are Grant and RefreshToken, both carrying account_id.
        await trx('oidc_models').where({ pool_id: poolId, account_id: id }).delete();
        // audit_events.user_id has no foreign key on purpose: the trail stays.
        return true;
      });
    },
  });
}
