/**
 * What the login API tests share: one database and one SMTP sink per test
 * file, and one Postern server per test, each with its own Redis key prefix.
 * A server per test keeps tests independent although every request comes
 * from the same client address: rate-limit counters, codes and challenges
 * live under the server's prefix. Each test also names its own pools, so a
 * snapshot of a pool's rows sees that test's writes only.
 */
import { randomBytes } from 'node:crypto';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Browserless } from '../../support/browserless.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import { type MailSink, startMailSink } from '../../support/mail-sink.ts';
import {
  type StartTestServerOptions,
  startTestServer,
  type TestServer,
} from '../../support/postern-server.ts';
import {
  createTestDatabase,
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  type TestDatabase,
  uniqueKeyPrefix,
} from '../../support/services.ts';
import type { SoftAuthenticator } from '../../support/soft-authenticator.ts';

export const REDIRECT = 'http://127.0.0.1:8750/callback';

export interface PoolOptions {
  /** (Optional) Defaults to smart. */
  mode?: 'smart' | 'classic';
  /** (Optional) Defaults to the schema's [passkey, email_otp]. */
  firstFactor?: Array<'passkey' | 'email_otp'>;
  /** (Optional) Defaults to open. */
  registration?: 'open' | 'invite_only' | 'disabled';
  secondFactorRequired?: 'never' | 'when_enrolled' | 'always';
  /** (Optional) Defaults to the schema's [passkey, recovery_code]. */
  secondFactor?: Array<'passkey' | 'recovery_code'>;
  passkeyCountsAsTwoFactors?: boolean;
  maxPerUser?: number;
}

/**
 * A pool file with two public clients: `web` (first-party, no consent) and
 * `partner` (a third party, asks for consent).
 */
export function poolFile(options: PoolOptions = {}): string {
  const authentication = [
    options.firstFactor ? `  first_factor: [${options.firstFactor.join(', ')}]` : '',
    options.secondFactorRequired ? `  second_factor_required: ${options.secondFactorRequired}` : '',
    options.secondFactor ? `  second_factor: [${options.secondFactor.join(', ')}]` : '',
    options.passkeyCountsAsTwoFactors === undefined
      ? ''
      : `  passkey_counts_as_two_factors: ${options.passkeyCountsAsTwoFactors}`,
  ].filter(Boolean);
  return `
display_name: Acme
passkeys:
  mode: ${options.mode ?? 'smart'}
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
${options.maxPerUser === undefined ? '' : `  registration:\n    max_per_user: ${options.maxPerUser}\n`}
${authentication.length > 0 ? `authentication:\n${authentication.join('\n')}\n` : ''}
registration:
  mode: ${options.registration ?? 'open'}
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
  - client_id: partner
    client_name: Partner App
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
`;
}

/** The rows of one pool that a refused call must leave alone. */
export interface AccountsSnapshot {
  users: unknown[];
  passkeys: unknown[];
  grants: unknown[];
}

export interface LoginFixture {
  database: TestDatabase;
  mail: MailSink;
  /** Starts a server for this test only (stopped when the test ends), with its own Redis prefix. */
  start(
    t: ExecutionContext<unknown>,
    pools: Record<string, string>,
    options?: { server?: string; wrapStores?: StartTestServerOptions['wrapStores'] },
  ): Promise<LoginServer>;
  /** Users, passkeys and grants of `poolId`, as the database holds them now. */
  accounts(poolId: string): Promise<AccountsSnapshot>;
  close(): Promise<void>;
}

export interface LoginServer {
  server: TestServer;
  /** This server's Redis key prefix. */
  prefix: string;
  /** Milliseconds `key` (without the prefix) has left in Redis; -2 when absent. */
  pttl(key: string): Promise<number>;
  /** The raw Redis value of `key` (without the prefix). */
  redisGet(key: string): Promise<string | null>;
}

/**
 * The test function of a login test file: its tests run only when PostgreSQL
 * and Redis answer (see serviceTest), and share one fixture, opened before
 * the first and closed after the last.
 */
export async function loginTests(): Promise<TestFn<{ fixture: LoginFixture }>> {
  const probes = await Promise.all([probePostgres(), probeRedis()]);
  const test = probes.reduce(
    (fn, probe) => serviceTest(fn, probe),
    anyTest as TestFn<{ fixture: LoginFixture }>,
  );
  test.before(async (t) => {
    t.context.fixture = await openLoginFixture();
  });
  test.after.always(async (t) => {
    await t.context.fixture?.close();
  });
  return test;
}

/**
 * Opens the file's database (migrated) and SMTP sink. Call from `test.before`
 * and close from `test.after.always`.
 */
export async function openLoginFixture(): Promise<LoginFixture> {
  const database = await createTestDatabase();
  const prefixes: string[] = [];
  let mail: MailSink | undefined;
  let sql: pg.Pool | undefined;
  let redis: Redis | undefined;
  try {
    mail = await startMailSink();
    const migrationPrefix = uniqueKeyPrefix();
    prefixes.push(migrationPrefix);
    const { openStores } = await import('../../../src/storage/open-stores.ts');
    const stores = await openStores({
      databaseUrl: database.url,
      redisUrl: redisTestUrl(),
      redisKeyPrefix: migrationPrefix,
    });
    await stores.durable.migrate();
    await stores.close();
    sql = new pg.Pool({ connectionString: database.url, max: 2 });
    sql.on('error', () => {});
    redis = new Redis(redisTestUrl(), { maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
  } catch (error) {
    await mail?.close();
    await database.drop();
    throw error;
  }
  const sink = mail;
  const db = sql;
  const client = redis;

  return {
    database,
    mail: sink,
    async start(t, pools, options = {}) {
      const prefix = uniqueKeyPrefix();
      prefixes.push(prefix);
      const server = await startTestServer({
        pools,
        // Every test has a server of its own and a file's tests run at once: a few database
        // connections each keep a whole run under PostgreSQL's max_connections (100 by default).
        server: `database:\n  pool_max: 2\n${options.server ?? ''}`,
        databaseUrl: database.url,
        redisUrl: redisTestUrl(),
        redisKeyPrefix: prefix,
        env: { SMTP_URL: sink.url },
        ...(options.wrapStores ? { wrapStores: options.wrapStores } : {}),
      });
      t.teardown(() => server.stop());
      return {
        server,
        prefix,
        pttl: (key) => client.pttl(`${prefix}${key}`),
        redisGet: (key) => client.get(`${prefix}${key}`),
      };
    },
    async accounts(poolId) {
      const [users, passkeys, grants] = await Promise.all([
        db.query(
          `select id, email, email_verified, name, webauthn_user_id, updated_at::text
             from users where pool_id = $1 order by id`,
          [poolId],
        ),
        db.query(
          `select id, user_id, credential_id, counter::text, name, backup_state, last_used_at::text
             from passkeys where pool_id = $1 order by id`,
          [poolId],
        ),
        db.query(`select model, id, payload from oidc_models where pool_id = $1 order by model, id`, [
          poolId,
        ]),
      ]);
      return { users: users.rows, passkeys: passkeys.rows, grants: grants.rows };
    },
    async close() {
      client.disconnect();
      await db.end().catch(() => {});
      await sink.close();
      await database.drop();
      for (const prefix of prefixes) await deleteKeysWithPrefix(prefix);
    },
  };
}

/**
 * A browser that sends fixed extra headers on every request, e.g. its own
 * User-Agent, or the X-Forwarded-For a trusted proxy would add.
 */
export class TaggedBrowser extends Browserless {
  readonly headers: Record<string, string>;

  constructor(headers: Record<string, string>) {
    super();
    this.headers = { ...headers };
  }

  override fetch(input: string | URL, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.headers))
      if (!headers.has(name)) headers.set(name, value);
    return super.fetch(input, { ...init, headers });
  }
}

export interface RawResult {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the text when it is not JSON. */
  body: Record<string, unknown>;
}

/**
 * POSTs `body` as is (a string: nothing is encoded) to one of the
 * interaction's API paths with its cookie, with the given content type and
 * headers. For malformed input and for reading response headers.
 */
export async function rawPost(
  login: InteractionClient,
  path: string,
  {
    body,
    contentType = 'application/json',
    headers = {},
  }: { body: string; contentType?: string; headers?: Record<string, string> },
): Promise<RawResult> {
  const response = await login.browser.fetch(`${login.base}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, accept: 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** A JSON POST that also returns the response headers (Retry-After). */
export const postJson = (login: InteractionClient, path: string, json: unknown) =>
  rawPost(login, path, { body: JSON.stringify(json) });

/** Starts a login of `clientId` (default: the first-party `web`). */
export function startLogin(
  server: TestServer,
  poolId: string,
  { clientId = 'web', browser }: { clientId?: string; browser?: Browserless } = {},
): Promise<InteractionClient> {
  return InteractionClient.start(server, {
    poolId,
    clientId,
    redirectUri: REDIRECT,
    ...(browser ? { browser } : {}),
  });
}

/** A user created directly in the durable store, as an operator's import would. */
export function createUser(server: TestServer, poolId: string, email: string) {
  return server.runtime.durable.users.create({ poolId, email, emailVerified: true });
}

/** A user with one stored passkey whose key nobody holds: enough for request options. */
export function createUserWithPasskey(server: TestServer, poolId: string, email: string) {
  return server.runtime.durable.users.createWithPasskey(
    { poolId, email, emailVerified: true },
    {
      credentialId: randomBytes(32).toString('base64url'),
      publicKey: randomBytes(77),
      counter: 0,
      transports: ['hybrid', 'internal'],
      aaguid: '00000000-0000-0000-0000-000000000000',
      backupEligible: false,
      backupState: false,
      uvInitialized: true,
      attestationFormat: 'none',
      name: 'Passkey on this device',
      discoverable: true,
    },
  );
}

/** A six-digit code that is certainly not `code`. */
export const otherCode = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

/** Gets a code into `login` for `email` and returns it. */
export async function mailedCode(login: InteractionClient, mail: MailSink, email: string): Promise<string> {
  const sent = await login.sendCode(email);
  if (sent.status !== 200)
    throw new Error(`sending a code failed: ${sent.status} ${JSON.stringify(sent.body)}`);
  return mail.nextCode(email);
}

/** Signs a new user up through the API: email code, then a passkey from `authenticator`. */
export async function signUp(
  server: TestServer,
  mail: MailSink,
  poolId: string,
  email: string,
  authenticator: SoftAuthenticator,
  { browser, transports }: { browser?: Browserless; transports?: string[] } = {},
) {
  const login = await startLogin(server, poolId, browser ? { browser } : {});
  await login.identify(email);
  await login.sendCode();
  const verified = await login.verifyCode(await mail.nextCode(email));
  if (verified.body.step !== 'enroll')
    throw new Error(`expected enroll, got ${JSON.stringify(verified.body)}`);
  const options = await login.registerOptions();
  const registered = await login.registerVerify(
    authenticator.register(options.body as never, server.url, transports ? { transports } : {}),
  );
  if (registered.status !== 200) throw new Error(`sign-up failed: ${JSON.stringify(registered.body)}`);
  return { login, answer: registered };
}

/** Signs in with a discoverable passkey (smart pool) and returns the answer. */
export async function passkeySignIn(
  server: TestServer,
  poolId: string,
  authenticator: SoftAuthenticator,
  { browser }: { browser?: Browserless } = {},
) {
  const login = await startLogin(server, poolId, browser ? { browser } : {});
  const options = await login.passkeyOptions();
  const answer = await login.passkeyVerify(authenticator.authenticate(options.body as never, server.url));
  return { login, answer };
}

/** Whether any message to `email` arrived; waits `ms` first so a late one would be seen. */
export async function receivedMail(mail: MailSink, email: string, ms = 500): Promise<boolean> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return mail.messages.some((message) => message.to.includes(email.toLowerCase()));
}

/** The body without `email`, for comparing answers about two different addresses. */
export function withoutEmail(body: Record<string, unknown>): Record<string, unknown> {
  const { email: _email, ...rest } = body;
  return rest;
}
