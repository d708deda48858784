/**
 * Bearer tokens at rest (issue 8, item 7): after real grants through a real
 * server on PostgreSQL and Redis, no stored row or key holds a token a client
 * could present; refresh, rotation and reuse detection still work; and
 * migration 0003 rewrites rows written the old way (the token as the key and
 * as `jti`), on PostgreSQL and on PGlite, so refresh tokens issued before
 * the upgrade keep working.
 */
import { createHash } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Redis } from 'ioredis';
import knex, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import * as client from 'openid-client';
import pg from 'pg';
import { type Migration, migrations } from '../../migrations/index.ts';
import { createAdapter } from '../../src/oidc/adapter.ts';
import { openMemoryEphemeralStore } from '../../src/storage/memory/memory-ephemeral-store.ts';
import { openStores } from '../../src/storage/open-stores.ts';
import { migrate } from '../../src/storage/postgres/migrate.ts';
import { createOidcModelRepository } from '../../src/storage/postgres/oidc-model-repository.ts';
import { Browserless } from '../support/browserless.ts';
import { finishLogin } from '../support/finish-login.ts';
import { startTestServer, type TestServer } from '../support/postern-server.ts';
import {
  createTestDatabase,
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  type TestDatabase,
  uniqueKeyPrefix,
} from '../support/services.ts';

interface Context {
  database: TestDatabase;
  prefix: string;
  server: TestServer;
  sql: pg.Pool;
  redis: Redis;
  userId: string;
}

const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
const test = serviceTest(serviceTest(anyTest as TestFn<Context>, postgres), redis);

const REDIRECT = 'http://127.0.0.1:8750/callback';
const POOL = 'acme';

const pool = `
passkeys:
  rp: { id: localhost, origins: ["\${PUBLIC_URL}"] }
clients:
  - client_id: app
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
`;

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

test.before(async (t) => {
  const database = await createTestDatabase();
  const prefix = uniqueKeyPrefix();
  const stores = await openStores({
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  await stores.durable.migrate();
  const user = await stores.durable.users.create({
    poolId: POOL,
    email: 'ada@acme.example',
    emailVerified: true,
  });
  await stores.close();
  const server = await startTestServer({
    pools: { [POOL]: pool },
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  const sql = new pg.Pool({ connectionString: database.url, max: 2 });
  sql.on('error', () => {});
  const raw = new Redis(redisTestUrl(), { maxRetriesPerRequest: 1 });
  raw.on('error', () => {});
  t.context = { database, prefix, server, sql, redis: raw, userId: user.id };
});

test.after.always(async (t) => {
  const { server, sql, redis: raw, database, prefix } = t.context ?? {};
  await server?.stop().catch(() => {});
  raw?.disconnect();
  await sql?.end().catch(() => {});
  await database?.drop();
  if (prefix) await deleteKeysWithPrefix(prefix);
});

/** The public client's openid-client configuration. */
async function relyingParty(server: TestServer) {
  const config = await client.discovery(new URL(server.issuer(POOL)), 'app', undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  client.enableNonRepudiationChecks(config);
  return config;
}

/** A code flow with offline_access, the login finished directly; returns the tokens and the code used. */
async function signIn(t: ExecutionContext<Context>) {
  const { server, userId } = t.context;
  const rp = await relyingParty(server);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT,
    scope: 'openid email offline_access',
    prompt: 'consent',
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const browser = new Browserless();
  const start = await browser.fetch(url);
  const uid = (start.headers.get('location') ?? '').split('/').pop() ?? '';
  const returnTo = await finishLogin(server.registry.get(POOL)!.provider, uid, { accountId: userId });
  const callback = await browser.follow(returnTo, { origin: new URL(server.url).origin });
  const callbackUrl = new URL(callback.headers.get('location') ?? '');
  const tokens = await client.authorizationCodeGrant(rp, callbackUrl, {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return { rp, tokens, code: callbackUrl.searchParams.get('code') ?? '' };
}

/** Every oidc_models row of the pool, each as one text (columns and payload). */
async function durableRows(t: ExecutionContext<Context>) {
  const { rows } = await t.context.sql.query<{ model: string; id: string; row: string }>(
    `select model, id, to_jsonb(m)::text as row from oidc_models m where pool_id = $1`,
    [POOL],
  );
  return rows;
}

/** Every key of this server's Redis prefix with its value (strings, sets and hashes), as text. */
async function redisDump(t: ExecutionContext<Context>): Promise<string> {
  const { redis: raw, prefix } = t.context;
  const keys = await raw.keys(`${prefix}*`);
  const parts: string[] = [];
  for (const key of keys) {
    const type = await raw.type(key);
    const value =
      type === 'hash'
        ? await raw.hgetall(key)
        : type === 'set'
          ? await raw.smembers(key)
          : type === 'string'
            ? await raw.get(key)
            : type;
    parts.push(`${key} ${JSON.stringify(value)}`);
  }
  return parts.join('\n');
}

const grantError = (promise: Promise<unknown>) =>
  promise.then(
    () => 'succeeded',
    (error: { error?: string }) => error.error,
  );

test.serial(
  'no stored row or Redis key holds a token; refresh rotates, and a replayed one revokes the grant',
  async (t) => {
    const { rp, tokens, code } = await signIn(t);
    const refreshToken = tokens.refresh_token ?? '';
    t.truthy(refreshToken, 'offline_access with consent brings a refresh token');

    const [stored] = (await durableRows(t)).filter((row) => row.model === 'RefreshToken');
    t.truthy(stored);
    t.is(stored?.id, sha256(refreshToken), 'the row is keyed by the hash of the token');
    t.false(stored?.row.includes(refreshToken), 'the token appears nowhere in the row');
    const dump = await redisDump(t);
    t.true(dump.includes(sha256(tokens.access_token)), 'the access token is stored, under its hash');
    for (const [name, secret] of [
      ['access token', tokens.access_token],
      ['refresh token', refreshToken],
      ['authorization code', code],
    ] as const) {
      t.truthy(secret);
      t.false(dump.includes(secret), `no Redis key or value holds the ${name}`);
      for (const row of await durableRows(t))
        t.false(row.row.includes(secret), `${row.model} row holds the ${name}`);
    }

    // The stored token still works: userinfo, introspection, refresh.
    t.is((await client.fetchUserInfo(rp, tokens.access_token, t.context.userId)).sub, t.context.userId);
    const refreshed = await client.refreshTokenGrant(rp, refreshToken);
    t.truthy(refreshed.refresh_token);
    t.not(refreshed.refresh_token, refreshToken, 'rotated');
    t.is(refreshed.claims()?.sub, t.context.userId);
    t.is((await client.fetchUserInfo(rp, refreshed.access_token, t.context.userId)).sub, t.context.userId);
    const rows = (await durableRows(t)).filter((row) => row.model === 'RefreshToken');
    t.deepEqual(
      rows.map((row) => row.id).sort(),
      [sha256(refreshToken), sha256(refreshed.refresh_token ?? '')].sort(),
      'the rotated token is kept (consumed) to detect reuse, both hashed',
    );

    // Reuse of the rotated token: refused, and the whole grant goes (RFC 9700 §4.14.2).
    t.is(await grantError(client.refreshTokenGrant(rp, refreshToken)), 'invalid_grant');
    t.is(await grantError(client.refreshTokenGrant(rp, refreshed.refresh_token ?? '')), 'invalid_grant');
    await t.throwsAsync(() => client.fetchUserInfo(rp, refreshed.access_token, t.context.userId));
    t.deepEqual(
      (await durableRows(t)).filter((row) => row.model === 'RefreshToken'),
      [],
      'the grant’s refresh tokens are gone',
    );
  },
);

test.serial('a refresh token stored the old way keeps working after migration 0003', async (t) => {
  const { rp, tokens } = await signIn(t);
  const refreshToken = tokens.refresh_token ?? '';
  const { sql } = t.context;
  // As the previous version stored it: the token as the key and as jti; 0003 not yet applied.
  const rewritten = await sql.query(
    `update oidc_models set id = $1, payload = payload || jsonb_build_object('jti', $1::text)
      where pool_id = $2 and model = 'RefreshToken' and id = $3`,
    [refreshToken, POOL, sha256(refreshToken)],
  );
  t.is(rewritten.rowCount, 1);
  await sql.query(`delete from knex_migrations where name = '0003_hash_token_ids'`);
  t.is(
    await grantError(client.refreshTokenGrant(rp, refreshToken)),
    'invalid_grant',
    'unmigrated, the row is not found',
  );

  const stores = await openStores({
    databaseUrl: t.context.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: t.context.prefix,
  });
  t.teardown(() => stores.close());
  t.deepEqual(await stores.durable.migrate(), { applied: ['0003_hash_token_ids'] });
  const [migrated] = (await durableRows(t)).filter((row) => row.model === 'RefreshToken');
  t.is(migrated?.id, sha256(refreshToken));
  t.false(migrated?.row.includes(refreshToken));

  const refreshed = await client.refreshTokenGrant(rp, refreshToken);
  t.is(refreshed.claims()?.sub, t.context.userId, 'the token issued before the upgrade still refreshes');
});

/** Migrates `db` to 0002, stores a refresh token the old way, migrates on, and reads it through the adapter. */
async function migrateOldRow(t: ExecutionContext<unknown>, db: Knex) {
  const before = migrations.slice(0, 2);
  const migrationSource: Knex.MigrationSource<Migration> = {
    getMigrations: async () => before,
    getMigrationName: (migration) => migration.name,
    getMigration: async (migration) => migration,
  };
  await db.migrate.latest({ migrationSource });
  const token = 'old-refresh-token_0123456789-abcdefghijklmnopqrstuv';
  const payload = {
    jti: token,
    kind: 'RefreshToken',
    grantId: 'grant-1',
    accountId: 'user-1',
    exp: 2_000_000_000,
  };
  await db('oidc_models').insert([
    {
      pool_id: 'p',
      model: 'RefreshToken',
      id: token,
      grant_id: 'grant-1',
      account_id: 'user-1',
      payload: JSON.stringify(payload),
      expires_at: db.raw(`now() + interval '1 day'`),
    },
    {
      pool_id: 'p',
      model: 'Grant',
      id: 'grant-1',
      account_id: 'user-1',
      payload: JSON.stringify({ jti: 'grant-1' }),
    },
  ]);

  t.deepEqual(
    (await migrate(db)).applied,
    migrations.slice(2).map((migration) => migration.name),
  );
  const rows = await db('oidc_models').select('model', 'id', 'payload').orderBy('model');
  t.deepEqual(
    rows.map((row) => [row.model, row.id, row.payload.jti]),
    [
      ['Grant', 'grant-1', 'grant-1'],
      ['RefreshToken', sha256(token), undefined],
    ],
    'the token is hashed with the same function as the adapter; grants are not touched',
  );

  const Adapter = createAdapter('p', {
    durable: {
      oidcModels: (poolId) => createOidcModelRepository(db, poolId),
      rotateRefreshToken: () => Promise.reject(new Error('no rotation in this test')),
    },
    ephemeral: openMemoryEphemeralStore(),
  });
  t.deepEqual(await new Adapter('RefreshToken').find(token), payload, 'found by the token, jti restored');
  t.is(await new Adapter('RefreshToken').find(sha256(token)), undefined, 'the stored key is no token');
}

test('postgres: migration 0003 hashes refresh tokens stored the old way', async (t) => {
  const database = await createTestDatabase();
  const db = knex({ client: 'pg', connection: database.url, pool: { min: 0, max: 2 } });
  t.teardown(async () => {
    await db.destroy();
    await database.drop();
  });
  await migrateOldRow(t, db);
});

anyTest('pglite: migration 0003 hashes refresh tokens stored the old way', async (t) => {
  const pglite = await PGlite.create();
  const db = knex({
    client: ClientPgLite,
    connection: (() => ({ pglite })) as unknown as Knex.Config['connection'],
  });
  t.teardown(async () => {
    await db.destroy(); // knex-pglite closes the instance it was given
    if (!pglite.closed) await pglite.close();
  });
  await migrateOldRow(t, db);
});
