/**
 * "Exactly one wins" on the protocol and operator side (issue 12, item 2),
 * against real PostgreSQL and Redis: each rule is tried by 50 clients at
 * once, each with a connection of its own (and, at the token endpoint, an
 * openid-client configuration of its own), or by two `postern` processes.
 * Each test fails if its rule breaks: two winners, a loser answered with
 * anything but the rule's refusal (a 5xx included), or rows left behind.
 *
 * - An authorization code redeemed 50 times: one token response, 49
 *   invalid_grant; the replays revoke the grant, so the winner's tokens die
 *   too (RFC 9700 §4.1.2, src/oidc/adapter.ts REVOKE_ON_REPLAY).
 * - A refresh token used 50 times: one rotated successor, 49 invalid_grant;
 *   the reuse revokes the grant, successor included (RFC 9700 §4.14.2), and
 *   PostgreSQL holds no second live successor.
 * - `postern keys rotate` from two processes: one key chain per algorithm.
 * - `postern migrate` from two processes on a fresh database: each migration
 *   once (test/integration/cli/shared-storage.test.ts runs two as well, but
 *   they do not always overlap; here both are held until both are up).
 * - 50 admin deletes of one user: one 200, 49 404, the user's rows gone; 50
 *   enrolment links issued at once for one user: exactly one of them opens.
 */
import { request as httpRequest } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import * as client from 'openid-client';
import pg from 'pg';
import { migrations } from '../../../migrations/index.ts';
import { tokenHashOf } from '../../../src/enrollment/enrollment-links.ts';
import { storedIdOf } from '../../../src/oidc/adapter.ts';
import { openSigningKeys } from '../../../src/oidc/signing-keys.ts';
import { signingKeyBox } from '../../../src/secrets/signing-key-box.ts';
import { openStores } from '../../../src/storage/open-stores.ts';
import { Browserless } from '../../support/browserless.ts';
import { minimalPool, writeConfigDir } from '../../support/config-dir.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import type { MailSink } from '../../support/mail-sink.ts';
import { startTestServer, TEST_SECRET, type TestServer } from '../../support/postern-server.ts';
import {
  createTestDatabaseFor,
  deleteKeysWithPrefix,
  redisTestUrl,
  uniqueKeyPrefix,
} from '../../support/services.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { runPostern } from '../../support/spawn-postern.ts';
import { adminCall, machineToken } from '../admin/admin-client.ts';
import { type LoginFixture, loginTests, REDIRECT, signUp } from '../login/login-fixture.ts';

const test = await loginTests();

/** How many clients race for each rule. */
const RACERS = 50;

const ADMIN_SECRET = 'race-admin-secret-0123456789-abcdefghijklmnop';

/** A first-party public client `web` with refresh tokens, and the admin client `ops`. */
const POOL = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
    first_party: true
  - client_id: ops
    client_secret: ${ADMIN_SECRET}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: admin
`;

/** A pool with nothing but its passkey settings: enough for signing keys and a JWKS. */
const KEYS_POOL = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
`;

/** As login-fixture.ts does: files run two at a time, within PostgreSQL's max_connections. */
const FEW_CONNECTIONS = 'database:\n  pool_max: 2\n';

type Context = ExecutionContext<{ fixture: LoginFixture }>;

// ------------------------------------------------------------------ separate clients

/**
 * fetch over a new TCP connection of its own (no keep-alive pool shared with
 * anyone), so 50 racers are 50 clients to the server, not 50 requests
 * queued on a few pooled sockets.
 */
async function fetchOnOwnConnection(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
  const headers: Record<string, string> = Object.fromEntries(request.headers);
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      request.url,
      { method: request.method, headers, agent: false },
      (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('error', reject);
        incoming.on('end', () => {
          const answer = new Headers();
          for (const [name, value] of Object.entries(incoming.headers)) {
            for (const one of [value ?? []].flat()) answer.append(name, one);
          }
          const status = incoming.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          resolve(new Response([204, 304].includes(status) ? null : text, { status, headers: answer }));
        });
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** A relying party of its own for `web`: its own discovery, and its own connection for every request. */
async function relyingParty(server: TestServer, poolId: string): Promise<client.Configuration> {
  const config = await client.discovery(new URL(server.issuer(poolId)), 'web', undefined, client.None(), {
    execute: [client.allowInsecureRequests],
    [client.customFetch]: (url, options) => fetchOnOwnConnection(url, options as RequestInit),
  });
  client.enableNonRepudiationChecks(config);
  return config;
}

const relyingParties = (server: TestServer, poolId: string) =>
  Promise.all(Array.from({ length: RACERS }, () => relyingParty(server, poolId)));

type Attempt<T> = { ok: true; value: T } | { ok: false; answer: string };

/** Runs `call`, turning a refusal into `"<status> <error>"` (or the message of anything else). */
async function attempt<T>(call: () => Promise<T>): Promise<Attempt<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    const { status, error: code, message } = error as { status?: number; error?: string; message?: string };
    return { ok: false, answer: status ? `${status} ${code}` : `not an OAuth answer: ${message}` };
  }
}

/** How many times each label came. */
function countOf(labels: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const label of labels) counts[label] = (counts[label] ?? 0) + 1;
  return counts;
}

/** How many times each outcome came: `won` for a success, else the refusal. */
const tally = (attempts: Array<Attempt<unknown>>) =>
  countOf(attempts.map((one) => (one.ok ? 'won' : one.answer)));

const winnerOf = <T>(attempts: Array<Attempt<T>>): T | undefined =>
  attempts.find((one): one is { ok: true; value: T } => one.ok)?.value;

/** What userinfo answers `accessToken`: 200 while its grant stands, 401 once it is revoked. */
async function userinfoStatus(rp: client.Configuration, accessToken: string): Promise<number> {
  const response = await fetch(String(rp.serverMetadata().userinfo_endpoint), {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  await response.body?.cancel();
  return response.status;
}

// ------------------------------------------------------------------ a user and a code

/** Queries on the login fixture's database, closed when the test ends. */
function database(t: Context): pg.Pool {
  const sql = new pg.Pool({ connectionString: t.context.fixture.database.url, max: 2 });
  sql.on('error', () => {});
  t.teardown(() => sql.end());
  return sql;
}

/**
 * Signs a new user up (email code, then a passkey), and then, in the same
 * browser, runs a second authorization request of `web` for offline_access
 * with a PKCE verifier of our own: the callback URL holds a fresh code.
 */
async function freshCode(server: TestServer, mail: MailSink, poolId: string, email: string) {
  const { login, answer } = await signUp(server, mail, poolId, email, new SoftAuthenticator());
  await login.followToApp(String(answer.body.redirect_to)); // the session; that first code is left alone
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const again = await InteractionClient.start(server, {
    poolId,
    clientId: 'web',
    redirectUri: REDIRECT,
    browser: login.browser,
    scope: 'openid email offline_access',
    params: { prompt: 'consent', state, code_challenge: await client.calculatePKCECodeChallenge(verifier) },
  });
  const resumed = await again.state();
  if (!resumed.body.redirect_to) throw new Error(`no way back to the app: ${JSON.stringify(resumed.body)}`);
  const callback = await again.followToApp(String(resumed.body.redirect_to));
  const user = await server.runtime.durable.users.findByEmail(poolId, email);
  if (!user) throw new Error(`no user ${email}`);
  return { callback, verifier, state, userId: user.id };
}

const redeem = (rp: client.Configuration, code: Awaited<ReturnType<typeof freshCode>>) =>
  client.authorizationCodeGrant(rp, code.callback, {
    pkceCodeVerifier: code.verifier,
    expectedState: code.state,
  });

interface ModelRow {
  model: string;
  id: string;
  grant_id: string | null;
  consumed: boolean;
}

/** The durable oidc-provider rows (Grant, RefreshToken) of one grant. */
async function grantRows(sql: pg.Pool, poolId: string, grantId: string): Promise<ModelRow[]> {
  const { rows } = await sql.query<ModelRow>(
    `select model, id, grant_id, consumed_at is not null as consumed from oidc_models
      where pool_id = $1 and ((model = 'Grant' and id = $2) or grant_id = $2) order by model, id`,
    [poolId, grantId],
  );
  return rows;
}

/** The one Grant of `accountId` in the pool. */
async function onlyGrantOf(sql: pg.Pool, poolId: string, accountId: string): Promise<string> {
  const { rows } = await sql.query<{ id: string }>(
    `select id from oidc_models where pool_id = $1 and model = 'Grant' and account_id = $2`,
    [poolId, accountId],
  );
  if (rows.length !== 1) throw new Error(`expected one grant, found ${rows.length}`);
  return rows[0]!.id;
}

/**
 * What PostgreSQL keeps of a revoked grant: no Grant row, and no live refresh
 * token but, at most, the one the winner got: stored after a loser's
 * revocation had already run, its row can stay until it expires, dead since
 * its grant is gone (the refusals before this check show it). Never two.
 */
function assertRevoked(t: Context, rows: ModelRow[], winnersRefreshToken: string): void {
  t.false(
    rows.some((row) => row.model === 'Grant'),
    'the grant is revoked',
  );
  const live = rows.filter((row) => row.model === 'RefreshToken' && !row.consumed).map((row) => row.id);
  t.true(live.length <= 1, `no two live refresh tokens: ${live.length}`);
  t.true(
    live.every((id) => id === storedIdOf('RefreshToken', winnersRefreshToken)),
    'no live refresh token but the winner’s',
  );
  if (live.length > 0)
    t.log('the winner’s refresh token was stored after the revocation: its row stays, dead');
}

// ------------------------------------------------------------------ the token endpoint

test('one authorization code redeemed by 50 clients at once: one token response, 49 invalid_grant, and the replays revoke the winner’s tokens', async (t) => {
  const poolId = 'race-code';
  const { server } = await t.context.fixture.start(t, { [poolId]: POOL });
  const code = await freshCode(server, t.context.fixture.mail, poolId, 'ada@race-code.example');
  const sql = database(t);
  const clients = await relyingParties(server, poolId);
  const grantId = await onlyGrantOf(sql, poolId, code.userId);

  const started = Date.now();
  const attempts = await Promise.all(clients.map((rp) => attempt(() => redeem(rp, code))));
  t.log(`${RACERS} redemptions in ${Date.now() - started} ms`);
  t.deepEqual(tally(attempts), { won: 1, '400 invalid_grant': RACERS - 1 });

  // The winner got a full answer, but 49 replays of its code revoked the grant it came from.
  const tokens = winnerOf(attempts)!;
  t.truthy(tokens.access_token);
  t.truthy(tokens.refresh_token);
  t.is(tokens.claims()?.sub, code.userId);
  const [rp] = clients as [client.Configuration];
  t.is(await userinfoStatus(rp, tokens.access_token), 401, 'the access token opens no userinfo');
  t.false((await client.tokenIntrospection(rp, tokens.access_token)).active);
  const refreshed = await attempt(() => client.refreshTokenGrant(rp, tokens.refresh_token!));
  t.deepEqual(refreshed, { ok: false, answer: '400 invalid_grant' }, 'the refresh token refreshes nothing');
  assertRevoked(t, await grantRows(sql, poolId, grantId), tokens.refresh_token!);
});

test('one refresh token used by 50 clients at once: one rotated successor, 49 invalid_grant; the reuse revokes the grant, successor included, and no second live successor is stored', async (t) => {
  const poolId = 'race-refresh';
  const { server } = await t.context.fixture.start(t, { [poolId]: POOL });
  const code = await freshCode(server, t.context.fixture.mail, poolId, 'bea@race-refresh.example');
  const sql = database(t);
  const rp = await relyingParty(server, poolId);
  const first = await redeem(rp, code);
  const refreshToken = first.refresh_token!;
  t.truthy(refreshToken);
  t.is(await userinfoStatus(rp, first.access_token), 200, 'the grant stands before the race');
  const grantId = await onlyGrantOf(sql, poolId, code.userId);
  t.deepEqual(
    (await grantRows(sql, poolId, grantId)).map(({ model, consumed }) => ({ model, consumed })),
    [
      { model: 'Grant', consumed: false },
      { model: 'RefreshToken', consumed: false },
    ],
  );
  const clients = await relyingParties(server, poolId);

  const started = Date.now();
  const attempts = await Promise.all(
    clients.map((racer) => attempt(() => client.refreshTokenGrant(racer, refreshToken))),
  );
  t.log(`${RACERS} refreshes in ${Date.now() - started} ms`);
  t.deepEqual(tally(attempts), { won: 1, '400 invalid_grant': RACERS - 1 });
  const successor = winnerOf(attempts)!;
  t.truthy(successor.refresh_token);
  t.not(successor.refresh_token, refreshToken, 'rotated');

  // 49 uses of a rotated token are reuse: the grant goes, with every token it issued.
  t.deepEqual(
    await attempt(() => client.refreshTokenGrant(rp, successor.refresh_token!)),
    { ok: false, answer: '400 invalid_grant' },
    'the successor refreshes nothing',
  );
  t.is(await userinfoStatus(rp, successor.access_token), 401);
  t.is(await userinfoStatus(rp, first.access_token), 401);
  t.false((await client.tokenIntrospection(rp, successor.access_token)).active);

  assertRevoked(t, await grantRows(sql, poolId, grantId), successor.refresh_token!);
});

// ------------------------------------------------------------------ the CLI

/**
 * Other sessions of `sql`'s database waiting for a lock (a table's, or an
 * advisory one). Not from inside a transaction: it would read one snapshot
 * of pg_stat_activity all along.
 */
async function lockWaiters(sql: pg.Client): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and wait_event_type = 'Lock'`,
  );
  return rows[0]!.n;
}

/** Polls `condition` every 10 ms until it holds. @throws {Error} after 30 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A fresh database (dropped when the test ends) and a Redis prefix (emptied then). */
async function freshStorage(t: Context) {
  const { url } = await createTestDatabaseFor(t);
  const prefix = uniqueKeyPrefix();
  t.teardown(() => deleteKeysWithPrefix(prefix));
  return { url, prefix };
}

test('`postern keys rotate` from two processes at once: both exit 0 and the pool keeps one key chain per algorithm, all published', async (t) => {
  const poolId = 'race-keys';
  const { url, prefix } = await freshStorage(t);
  const stores = await openStores({ databaseUrl: url, redisUrl: redisTestUrl(), redisKeyPrefix: prefix });
  await stores.durable.migrate();
  await stores.close();
  // The server creates the pool's first keys (one per algorithm) and serves the JWKS.
  const server = await startTestServer({
    pools: { [poolId]: KEYS_POOL },
    server: FEW_CONNECTIONS,
    databaseUrl: url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  t.teardown(() => server.stop());
  const repository = server.runtime.durable.signingKeys;
  const initial = await repository.list(poolId);
  t.is(initial.length, 2);
  const env = {
    POSTERN_CONFIG_DIR: server.configDir.dir,
    DATABASE_URL: url,
    REDIS_URL: redisTestUrl(),
    POSTERN_SECRET: TEST_SECRET,
    PUBLIC_URL: server.url,
  };

  // Two processes started together still reach the table milliseconds apart, one after the
  // other: hold the table until both wait inside their rotation, so they really run at once.
  const [gate, watcher] = [
    new pg.Client({ connectionString: url }),
    new pg.Client({ connectionString: url }),
  ];
  await Promise.all([gate.connect(), watcher.connect()]);
  t.teardown(() => Promise.all([gate.end(), watcher.end()]));
  await gate.query('begin');
  await gate.query('lock table signing_keys in exclusive mode');
  let exited = 0;
  const running = [0, 1].map(() =>
    runPostern(['keys', 'rotate', '--pool', poolId], env).finally(() => {
      exited += 1;
    }),
  );
  await until(async () => exited > 0 || (await lockWaiters(watcher)) >= 2);
  t.is(exited, 0, 'both processes were rotating when the table opened');
  await gate.query('commit');
  const rotations = await Promise.all(running);
  for (const rotation of rotations) t.is(rotation.code, 0, rotation.stderr);
  const newKids = rotations.flatMap(
    (rotation) => /new keys (\S+), (\S+) are published/.exec(rotation.stdout)?.slice(1) ?? [],
  );
  t.is(new Set(newKids).size, 4, 'each process added a key per algorithm');

  const now = new Date();
  const records = await repository.list(poolId);
  t.deepEqual(
    records.map((record) => record.kid).sort(),
    [...initial.map((record) => record.kid), ...newKids].sort(),
    'the first keys and the four new ones, nothing else',
  );
  const box = signingKeyBox(server.runtime.secret.secret);
  const signerAt = (instant: Date) => {
    const signers = new Map<string, string>();
    for (const key of openSigningKeys(records, box, instant).keys)
      if (!signers.has(key.alg)) signers.set(key.alg, key.kid);
    return signers;
  };
  const lastRetirement = Math.max(...records.map((record) => record.retiredAt?.getTime() ?? 0));
  for (const alg of ['ES256', 'RS256']) {
    const ofAlg = records.filter((record) => record.alg === alg);
    const unretired = ofAlg.filter((record) => record.retiredAt === null);
    t.is(unretired.length, 1, `${alg}: one key is the newest, the others are replaced`);
    t.true(newKids.includes(unretired[0]!.kid));
    t.true(
      ofAlg.every((record) => record.retiredAt === null || record.retiredAt > now),
      `${alg}: replaced keys sign until the rotation's activation, none is cut short`,
    );
    // One signer at every moment: the first key until the rotations activate, then the newest.
    t.is(signerAt(now).get(alg), initial.find((record) => record.alg === alg)!.kid);
    t.is(signerAt(new Date(lastRetirement + 1)).get(alg), unretired[0]!.kid);
  }

  await server.registry.refreshKeys();
  const jwks = (await (await fetch(`${server.url}/${poolId}/jwks`)).json()) as {
    keys: Array<{ kid: string; d?: string }>;
  };
  t.deepEqual(
    jwks.keys.map((key) => key.kid).sort(),
    records.map((record) => record.kid).sort(),
    'the JWKS publishes all six',
  );
  t.true(
    jwks.keys.every((key) => key.d === undefined),
    'public parts only',
  );
});

/**
 * One TCP proxy to Redis per process, each holding its connections until
 * every proxy has one (or `open()` is called). `postern migrate` pings Redis
 * before it migrates, so processes behind these start migrating at the same
 * moment, rather than a few milliseconds apart, often one after the other.
 */
async function redisGates(count: number) {
  const upstream = new URL(redisTestUrl());
  const held: Array<Array<() => void>> = Array.from({ length: count }, () => []);
  const sockets = new Set<Socket>();
  let opened = false;
  const open = () => {
    opened = true;
    for (const waiting of held) for (const go of waiting.splice(0)) go();
  };
  const servers = await Promise.all(
    held.map(
      (waiting) =>
        new Promise<Server>((resolve) => {
          const server = createServer((socket) => {
            socket.pause();
            const go = () => {
              const onward = connect(Number(upstream.port || 6379), upstream.hostname);
              for (const end of [socket, onward]) {
                sockets.add(end);
                end.on('error', () => {
                  socket.destroy();
                  onward.destroy();
                });
              }
              socket.pipe(onward).pipe(socket);
              socket.resume();
            };
            waiting.push(go);
            if (opened || held.every((list) => list.length > 0)) open();
          });
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  return {
    /** A REDIS_URL for each process. */
    urls: servers.map((server) => {
      const url = new URL(upstream);
      url.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
      return url.href;
    }),
    /** Whether every proxy had a connection (or open() was called). */
    opened: () => opened,
    open,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}

test('`postern migrate` from two processes at once on a fresh database: both exit 0 and each migration is applied once', async (t) => {
  const { url, prefix } = await freshStorage(t);
  const config = await writeConfigDir({
    server: `${FEW_CONNECTIONS}redis:\n  key_prefix: "${prefix}"\n`,
    pools: { 'race-migrate': minimalPool() },
  });
  t.teardown(() => config.remove());
  const gates = await redisGates(2);
  t.teardown(() => gates.close());
  const env = (redisUrl: string) => ({
    POSTERN_CONFIG_DIR: config.dir,
    DATABASE_URL: url,
    REDIS_URL: redisUrl,
    POSTERN_SECRET: TEST_SECRET,
    PUBLIC_URL: 'http://localhost:3000',
  });

  let exitedFirst = false;
  const runs = await Promise.all(
    gates.urls.map((redisUrl) =>
      runPostern(['migrate'], env(redisUrl)).finally(() => {
        exitedFirst ||= !gates.opened();
        gates.open(); // one that failed early must not hold the other
      }),
    ),
  );
  t.false(exitedFirst, 'both processes were up when they started to migrate');
  for (const run of runs) t.is(run.code, 0, run.stderr);
  t.deepEqual(runs.map((run) => run.stdout.trim()).sort(), [
    `Applied ${migrations.length} migration(s): ${migrations.map((migration) => migration.name).join(', ')}.`,
    'Database is up to date.',
  ]);

  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  t.teardown(() => sql.end());
  const applied = await sql.query<{ name: string; times: number }>(
    'select name, count(*)::int as times from knex_migrations group by name order by name',
  );
  t.deepEqual(
    applied.rows,
    migrations
      .map((migration) => ({ name: migration.name, times: 1 }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  );
  const lock = await sql.query<{ is_locked: number }>('select is_locked from knex_migrations_lock');
  t.deepEqual(lock.rows, [{ is_locked: 0 }], 'knex’s lock is left released');
});

// ------------------------------------------------------------------ the admin API

/** The admin API of `poolId`, called on a connection of its own. */
async function adminOnOwnConnection(
  server: TestServer,
  poolId: string,
  token: string,
  method: string,
  path: string,
) {
  const response = await fetchOnOwnConnection(`${server.url}/${poolId}/api/admin/${path}`, {
    method,
    headers: {
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
    },
    body: method === 'DELETE' ? null : '{}',
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
}

/** A token of `ops` for each racer: 50 sessions of the operator's tooling. */
const adminTokens = (server: TestServer, poolId: string) =>
  Promise.all(
    Array.from({ length: RACERS }, () =>
      machineToken(server, poolId, { clientId: 'ops', secret: ADMIN_SECRET }),
    ),
  );

test('50 admin deletes of one user at once: one 200, 49 not_found, and the user’s rows go once', async (t) => {
  const poolId = 'race-delete';
  const { server } = await t.context.fixture.start(t, { [poolId]: POOL });
  const code = await freshCode(server, t.context.fixture.mail, poolId, 'cy@race-delete.example');
  const { userId } = code;
  const rp = await relyingParty(server, poolId);
  const tokens = await redeem(rp, code);
  const sql = database(t);
  const count = async (query: string) => (await sql.query<{ n: number }>(query, [poolId, userId])).rows[0]!.n;
  const rowsOf = () =>
    Promise.all([
      count('select count(*)::int as n from users where pool_id = $1 and id = $2'),
      count('select count(*)::int as n from passkeys where pool_id = $1 and user_id = $2'),
      count('select count(*)::int as n from oidc_models where pool_id = $1 and account_id = $2'),
    ]);
  const [users, passkeys, oidcRows] = await rowsOf();
  t.deepEqual([users, passkeys], [1, 1]);
  t.true(oidcRows >= 2, 'a grant and a refresh token to erase');
  const racerTokens = await adminTokens(server, poolId);

  const started = Date.now();
  const answers = await Promise.all(
    racerTokens.map((token) => adminOnOwnConnection(server, poolId, token, 'DELETE', `users/${userId}`)),
  );
  t.log(`${RACERS} deletes in ${Date.now() - started} ms`);
  t.deepEqual(countOf(answers.map((answer) => `${answer.status} ${answer.body?.error ?? ''}`.trim())), {
    '200': 1,
    '404 not_found': RACERS - 1,
  });
  t.is(answers.find((answer) => answer.status === 200)!.body.id, userId);

  t.deepEqual(await rowsOf(), [0, 0, 0], 'no user, passkey, grant or refresh token row left');
  t.is(
    await count(
      `select count(*)::int as n from audit_events where pool_id = $1 and user_id = $2 and event = 'user_deleted'`,
    ),
    1,
    'one erasure in the audit trail',
  );
  t.deepEqual(await attempt(() => client.refreshTokenGrant(rp, tokens.refresh_token!)), {
    ok: false,
    answer: '400 invalid_grant',
  });
});

test('50 enrolment links issued at once for one user: all answered 201, and exactly one of them opens', async (t) => {
  const poolId = 'race-link';
  const { server } = await t.context.fixture.start(t, { [poolId]: POOL });
  const sql = database(t);
  const ops = await machineToken(server, poolId, { clientId: 'ops', secret: ADMIN_SECRET });
  const created = await adminCall(server, poolId, ops, 'POST', 'users', { email: 'di@race-link.example' });
  t.is(created.status, 201, JSON.stringify(created.body));
  const userId = String(created.body.id);
  const racerTokens = await adminTokens(server, poolId);

  const issued = await Promise.all(
    racerTokens.map((token) =>
      adminOnOwnConnection(server, poolId, token, 'POST', `users/${userId}/enrollment-link`),
    ),
  );
  t.deepEqual(countOf(issued.map((answer) => String(answer.status))), {
    '201': RACERS,
  });
  const urls = issued.map((answer) => String(answer.body.url));
  t.is(new Set(urls).size, RACERS, 'each its own link');

  // One link per user: the one stored is the one that opens; every other was replaced.
  const opened = await Promise.all(
    urls.map(async (url) => {
      const response = await new Browserless().fetch(url, { headers: { accept: 'text/html' } });
      await response.body?.cancel();
      return response.status;
    }),
  );
  t.deepEqual(countOf(opened.map(String)), {
    '200': 1,
    '404': RACERS - 1,
  });
  const { rows } = await sql.query<{ token_hash: string; used_at: Date | null }>(
    'select token_hash, used_at from enrollment_links where pool_id = $1 and user_id = $2',
    [poolId, userId],
  );
  const winner = urls[opened.indexOf(200)]!;
  const token = winner.slice(winner.lastIndexOf('/') + 1);
  t.deepEqual(rows, [{ token_hash: tokenHashOf(token), used_at: null }]);
});
