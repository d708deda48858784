/**
 * The users the bench signs in, each with one discoverable passkey held by
 * its own SoftAuthenticator, made before any load:
 *
 * - On PostgreSQL they are written straight into `users` and `passkeys`
 *   (migrations/0001): fast for any count. Each authenticator makes its
 *   credential with its ordinary `register()`, on creation options the bench
 *   writes itself, and the row holds the COSE public key it reports, which is
 *   what a registration stores. (Signing up through the API costs an email
 *   code per user and exercises what the bench does not measure.)
 * - In embedded mode PGlite belongs to the running Postern, so users sign up
 *   through the interaction API, their codes read from an SMTP sink.
 *
 * `fillPasskeys` adds fake users and passkeys with generate_series, for the
 * --scale comparison (sign-ins among 1,000 stored passkeys and among
 * 1,000,000); the real users' rows stay as they are.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { MailSink } from '../support/mail-sink.ts';
import { SoftAuthenticator } from '../support/soft-authenticator.ts';
import { type BenchUser, posternSignUp, type Target } from './flows.ts';

const AAGUID_UNKNOWN = '00000000-0000-0000-0000-000000000000';

function benchEmail(index: number): string {
  return `bench-${index}@bench.example`;
}

/** A user whose authenticator already holds their passkey, with what its rows need. */
export interface MintedUser {
  user: BenchUser;
  userHandle: string;
  credentialId: string;
  publicKeyCose: Buffer;
}

function mintUser(index: number): MintedUser {
  const authenticator = new SoftAuthenticator();
  const email = benchEmail(index);
  const userHandle = randomBytes(32).toString('base64url');
  authenticator.register(
    {
      challenge: randomBytes(32).toString('base64url'),
      rp: { id: 'localhost', name: 'Bench' },
      user: { id: userHandle, name: email, displayName: email },
      pubKeyCredParams: [{ alg: -7, type: 'public-key' }],
    },
    // The registration's client data is not kept: only the credential matters here.
    'http://localhost',
  );
  const credential = authenticator.credentials[0];
  if (!credential) throw new Error('the soft authenticator made no credential');
  return {
    user: { email, authenticator },
    userHandle,
    credentialId: credential.id.toString('base64url'),
    publicKeyCose: Buffer.from(credential.publicKeyCose),
  };
}

/** `count` users with a passkey each, stored nowhere yet. */
export function mintUsers(count: number): MintedUser[] {
  return Array.from({ length: count }, (_, index) => mintUser(index));
}

/**
 * Inserts minted users and their passkeys into a bench database (the same
 * users may go into several: --scale runs two databases).
 */
export async function insertUsers(client: pg.Client, poolId: string, minted: MintedUser[]): Promise<void> {
  const BATCH = 1_000;
  for (let first = 0; first < minted.length; first += BATCH) {
    const batch = minted.slice(first, first + BATCH);
    const { rows } = await client.query<{ id: string; email: string }>(
      `insert into users (pool_id, email, email_verified, webauthn_user_id)
       select $1, email, true, handle from unnest($2::text[], $3::text[]) as given(email, handle)
       returning id, email`,
      [poolId, batch.map((one) => one.user.email), batch.map((one) => one.userHandle)],
    );
    const idOf = new Map(rows.map((row) => [row.email, row.id]));
    await client.query(
      `insert into passkeys (pool_id, user_id, credential_id, public_key, counter, transports, aaguid,
                             backup_eligible, backup_state, uv_initialized, attestation_format, name)
       select $1, user_id, credential_id, public_key, 0, '["internal","hybrid"]'::jsonb, $5,
              false, false, true, 'none', 'Bench passkey'
       from unnest($2::uuid[], $3::text[], $4::bytea[]) as given(user_id, credential_id, public_key)`,
      [
        poolId,
        batch.map((one) => idOf.get(one.user.email)),
        batch.map((one) => one.credentialId),
        batch.map((one) => one.publicKeyCose),
        AAGUID_UNKNOWN,
      ],
    );
  }
}

/**
 * Signs `count` users up through Postern's interaction API (embedded mode).
 * @param concurrency (Optional) Sign-ups in flight at once. Defaults to 4.
 */
export async function signUpUsersThroughApi(
  target: Target,
  mail: MailSink,
  { count, concurrency = 4 }: { count: number; concurrency?: number },
): Promise<BenchUser[]> {
  const users = Array.from({ length: count }, (_, index) => ({
    email: benchEmail(index),
    authenticator: new SoftAuthenticator(),
  }));
  let next = 0;
  const signUpNext = async () => {
    while (next < users.length) {
      const user = users[next++] as BenchUser;
      await posternSignUp(target, user, (email) => mail.nextCode(email));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, signUpNext));
  return users;
}

/**
 * Adds fake users (two passkeys each, one shared real COSE key) until the
 * pool holds `total` passkeys, then VACUUM ANALYZE so the planner knows the
 * new sizes. Batches of 100,000 passkeys.
 * @returns how many passkeys were added and how long it took.
 */
export async function fillPasskeys(
  client: pg.Client,
  { poolId, total, onProgress }: { poolId: string; total: number; onProgress?: (stored: number) => void },
): Promise<{ added: number; ms: number }> {
  const started = Date.now();
  const count = async (sql: string) =>
    Number((await client.query<{ n: string }>(sql, [poolId])).rows[0]?.n ?? 0);
  const stored = await count('select count(*) as n from passkeys where pool_id = $1');
  let fillers = await count(
    `select count(*) as n from passkeys where pool_id = $1 and name = 'Filler passkey'`,
  );
  const { publicKeyCose: publicKey } = mintUser(-1);
  const needed = Math.max(0, total - stored);
  const BATCH = 100_000;
  for (let added = 0; added < needed; ) {
    const batch = Math.min(BATCH, needed - added);
    // Passkey numbers p = fillers … fillers+batch-1 belong to filler user floor(p / 2).
    const firstUser = Math.ceil(fillers / 2);
    const lastUser = Math.floor((fillers + batch - 1) / 2);
    await client.query(
      `with new_users as (
         insert into users (pool_id, email, email_verified, webauthn_user_id)
         select $1, 'filler-' || n || '@bench.example', true, md5('handle' || n) || md5('user' || n)
         from generate_series($2::int, $3::int) as n
         returning id, email
       )
       insert into passkeys (pool_id, user_id, credential_id, public_key, counter, transports, aaguid,
                             backup_eligible, backup_state, uv_initialized, attestation_format, name)
       select $1, coalesce(new_users.id, existing.id), md5('credential' || p) || md5('id' || p), $6, 0,
              '["internal"]'::jsonb, $7, false, false, true, 'none', 'Filler passkey'
       from generate_series($4::int, $5::int) as p
       left join new_users on new_users.email = 'filler-' || (p / 2) || '@bench.example'
       left join users existing
         on existing.pool_id = $1 and existing.email = 'filler-' || (p / 2) || '@bench.example'`,
      [poolId, firstUser, lastUser, fillers, fillers + batch - 1, publicKey, AAGUID_UNKNOWN],
    );
    added += batch;
    fillers += batch;
    onProgress?.(stored + added);
  }
  if (needed > 0) await client.query('vacuum analyze users, passkeys');
  return { added: needed, ms: Date.now() - started };
}
