/**
 * Passkeys (WebAuthn credentials) in PostgreSQL/PGlite.
 *
 * The per-user limit is enforced in the database, not by a count the caller
 * read earlier: `create` with `maxPerUser` locks the user's row
 * (SELECT ... FOR UPDATE), counts and inserts in one transaction, so two
 * concurrent registrations cannot both take the last slot.
 *
 * The pool-wide ceiling (`maxPerPool`) works the same way with a lock that
 * no row stands for: a transaction-scoped advisory lock on the pool
 * (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS),
 * taken before the count and held to the commit. The count runs after it is
 * granted, so under READ COMMITTED it sees every insert of the transactions
 * that held it before. Without a ceiling nothing is locked or counted.
 */
import type { Knex } from 'knex';
import { LimitExceededError } from '../errors.ts';
import type { NewPasskey, Passkey, PasskeyRepository } from '../types.ts';
import { changedRows, fromBytes, isUuid, toBytes, toNumber } from './column-values.ts';
import { withTranslatedErrors } from './translate-error.ts';
import { type AccountRow, enrolmentCounts, toAccount } from './user-repository.ts';

interface PasskeyRow {
  id: string;
  pool_id: string;
  user_id: string;
  credential_id: string;
  public_key: Uint8Array;
  counter: string | number;
  transports: string[];
  aaguid: string;
  backup_eligible: boolean;
  backup_state: boolean;
  uv_initialized: boolean;
  attestation_format: string;
  name: string;
  discoverable: boolean | null;
  created_at: Date;
  last_used_at: Date | null;
}

const PASSKEY_COLUMNS = [
  'id',
  'pool_id',
  'user_id',
  'credential_id',
  'public_key',
  'counter',
  'transports',
  'aaguid',
  'backup_eligible',
  'backup_state',
  'uv_initialized',
  'attestation_format',
  'name',
  'discoverable',
  'created_at',
  'last_used_at',
] as const satisfies ReadonlyArray<keyof PasskeyRow>;

function toPasskey(row: PasskeyRow): Passkey {
  return {
    id: row.id,
    poolId: row.pool_id,
    userId: row.user_id,
    credentialId: row.credential_id,
    publicKey: toBytes(row.public_key),
    counter: toNumber(row.counter),
    transports: [...row.transports],
    aaguid: row.aaguid,
    backupEligible: row.backup_eligible,
    backupState: row.backup_state,
    uvInitialized: row.uv_initialized,
    attestationFormat: row.attestation_format,
    name: row.name,
    discoverable: row.discoverable,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

/**
 * Inserts one passkey on `db` (a knex instance or an open transaction); shared
 * with the user repository's sign-up transaction.
 * @throws driver errors untranslated; callers wrap them.
 */
export async function insertPasskey(db: Knex | Knex.Transaction, passkey: NewPasskey): Promise<Passkey> {
  const [row] = await db('passkeys')
    .insert({
      pool_id: passkey.poolId,
      user_id: passkey.userId,
      credential_id: passkey.credentialId,
      public_key: fromBytes(passkey.publicKey),
      counter: passkey.counter,
      transports: JSON.stringify(passkey.transports),
      aaguid: passkey.aaguid,
      backup_eligible: passkey.backupEligible,
      backup_state: passkey.backupState,
      uv_initialized: passkey.uvInitialized,
      attestation_format: passkey.attestationFormat,
      name: passkey.name,
      discoverable: passkey.discoverable,
    })
    .returning('*');
  return toPasskey(row as PasskeyRow);
}

/**
 * Takes the pool's passkey lock for the rest of `trx` and refuses when the
 * pool already stores `maxPerPool` passkeys. Call before the insert, in the
 * insert's transaction; shared with the user repository's sign-up. The key
 * is `hashtext` of a namespaced name, as the signing-key lock's is: a clash
 * between two pools' hashes only makes them wait for each other.
 * @throws {LimitExceededError} scope `per_pool` at the ceiling.
 */
export async function holdPoolCeiling(trx: Knex.Transaction, poolId: string, maxPerPool: number) {
  await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`postern:passkeys:${poolId}`]);
  const row = await trx('passkeys').where({ pool_id: poolId }).count({ count: '*' }).first();
  if (toNumber(row?.count ?? 0) >= maxPerPool) {
    throw new LimitExceededError('passkeys per pool', maxPerPool, 'per_pool');
  }
}

/**
 * Inserts one passkey within the user's and the pool's limits, on an open
 * transaction: locks the user's row and counts their passkeys when
 * `maxPerUser` is given, then holds the pool's lock and counts its passkeys
 * when `maxPerPool` is. Shared with every repository that stores a passkey
 * inside a larger transaction (an enrolment link's redemption).
 * @throws {LimitExceededError} scope `per_user` or `per_pool`; nothing is inserted.
 * @throws driver errors untranslated; callers wrap them.
 */
export async function insertPasskeyWithinLimits(
  trx: Knex.Transaction,
  passkey: NewPasskey,
  { maxPerUser, maxPerPool }: { maxPerUser?: number | undefined; maxPerPool?: number | undefined } = {},
): Promise<Passkey> {
  if (maxPerUser !== undefined) {
    // The user row is the lock every registration of this user queues on.
    const user = await trx('users')
      .select('id')
      .where({ pool_id: passkey.poolId, id: passkey.userId })
      .forUpdate()
      .first();
    if (!user) throw new Error(`user ${passkey.userId} does not exist in pool ${passkey.poolId}`);
    if ((await countByUser(trx, passkey.poolId, passkey.userId)) >= maxPerUser) {
      throw new LimitExceededError('passkeys per user', maxPerUser, 'per_user');
    }
  }
  // Always after the user's row: one order of locks, and a registration
  // waiting for its user holds up no one else in the pool.
  if (maxPerPool !== undefined) await holdPoolCeiling(trx, passkey.poolId, maxPerPool);
  return insertPasskey(trx, passkey);
}

async function countByUser(db: Knex | Knex.Transaction, poolId: string, userId: string): Promise<number> {
  const row = await db('passkeys').where({ pool_id: poolId, user_id: userId }).count({ count: '*' }).first();
  return toNumber(row?.count ?? 0);
}

/**
 * The PasskeyRepository over knex. Driver errors leave it as typed storage errors.
 * @throws {UniqueViolationError} `passkeys_pool_id_credential_id_unique` on a duplicate credential id.
 * @throws {LimitExceededError} from `create` when the user already has `maxPerUser` passkeys
 *   (scope `per_user`) or the pool already stores `maxPerPool` (scope `per_pool`).
 * @throws {StoreUnavailableError} when the database is unreachable.
 */
export function createPasskeyRepository(db: Knex): PasskeyRepository {
  return withTranslatedErrors<PasskeyRepository>({
    async create(passkey, options = {}) {
      const { maxPerUser, maxPerPool } = options;
      if (maxPerUser === undefined && maxPerPool === undefined) return insertPasskey(db, passkey);
      return db.transaction((trx) => insertPasskeyWithinLimits(trx, passkey, { maxPerUser, maxPerPool }));
    },

    async findByCredentialId(poolId, credentialId) {
      const row = await db<PasskeyRow>('passkeys')
        .where({ pool_id: poolId, credential_id: credentialId })
        .first();
      return row ? toPasskey(row) : undefined;
    },

    async findWithOwner(poolId, credentialId) {
      // The passkey's columns prefixed, beside the owner's (both tables have id, pool_id, created_at...).
      const row = await db('passkeys')
        .join('users', { 'users.id': 'passkeys.user_id', 'users.pool_id': 'passkeys.pool_id' })
        .where({ 'passkeys.pool_id': poolId, 'passkeys.credential_id': credentialId })
        .first(
          'users.*',
          ...PASSKEY_COLUMNS.map((column) => `passkeys.${column} as passkey_${column}`),
          ...enrolmentCounts(db),
        );
      if (!row) return undefined;
      const passkey = Object.fromEntries(
        PASSKEY_COLUMNS.map((column) => [column, (row as Record<string, unknown>)[`passkey_${column}`]]),
      ) as unknown as PasskeyRow;
      return { passkey: toPasskey(passkey), owner: toAccount(row as AccountRow) };
    },

    async listByUser(poolId, userId) {
      if (!isUuid(userId)) return [];
      const rows = await db<PasskeyRow>('passkeys')
        .where({ pool_id: poolId, user_id: userId })
        .orderBy([{ column: 'created_at' }, { column: 'id' }]);
      return rows.map(toPasskey);
    },

    async countByUser(poolId, userId) {
      if (!isUuid(userId)) return 0;
      return countByUser(db, poolId, userId);
    },

    async recordUse(id, { previousCounter, counter, backupState, usedAt }) {
      if (!isUuid(id)) return false;
      const changed = await db('passkeys')
        .where({ id, counter: previousCounter })
        .update({ counter, backup_state: backupState, last_used_at: usedAt });
      return changedRows(changed) > 0;
    },

    async rename(poolId, userId, id, name) {
      if (!isUuid(userId) || !isUuid(id)) return false;
      const changed = await db('passkeys').where({ pool_id: poolId, user_id: userId, id }).update({ name });
      return changedRows(changed) > 0;
    },

    async delete(poolId, userId, id) {
      if (!isUuid(userId) || !isUuid(id)) return false;
      const deleted = await db('passkeys').where({ pool_id: poolId, user_id: userId, id }).delete();
      return changedRows(deleted) > 0;
    },
  });
}
