/**
 * The login use cases as plain functions: no HTTP, no oidc-provider. Each
 * scenario drives the interaction calls (the same list the routes serve)
 * over an in-memory PGlite and the in-process ephemeral store, with a fake
 * oidc port that records how the interaction ended. One database for the
 * file (PGlite starts in seconds); each scenario runs in milliseconds.
 */
import { randomUUID } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { PoolFileSchema } from '../../../src/config/schema.ts';
import { type PoolConfig, resolvePool } from '../../../src/config/types.ts';
import type { Message } from '../../../src/email/mailer.ts';
import { createLoginMetrics } from '../../../src/interactions/login-metrics.ts';
import { createLoginService, type LoginScope } from '../../../src/interactions/login-service.ts';
import type { ConsentResult, LoginResult } from '../../../src/interactions/oidc-port.ts';
import { createLogger } from '../../../src/logging/create-logger.ts';
import { openMemoryEphemeralStore } from '../../../src/storage/memory/memory-ephemeral-store.ts';
import { openDurableStore } from '../../../src/storage/postgres/open-durable-store.ts';
import type { DurableStore, EphemeralStore } from '../../../src/storage/types.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';

const ORIGIN = 'http://localhost:3000';
const logger = createLogger({ level: 'silent', pretty: false });

interface Context {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  service: ReturnType<typeof createLoginService>;
  mail: Message[];
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const durable = await openDurableStore({});
  await durable.migrate();
  const ephemeral = openMemoryEphemeralStore();
  const mail: Message[] = [];
  const service = createLoginService({
    durable,
    ephemeral,
    mailer: {
      send: async (message) => {
        mail.push(message);
      },
      close() {},
    },
    logger,
    secret: 'use-case-test-secret-0123456789-abcdefghijklmnop',
    publicUrl: 'http://localhost:3000',
    metrics: createLoginMetrics(new Registry()),
  });
  t.context = { durable, ephemeral, service, mail };
});

test.after.always(async (t) => {
  await t.context.durable?.close();
});

/** A pool as its file would say it, on localhost; each scenario has a pool id of its own. */
function poolOf(yaml: string): PoolConfig {
  const file = PoolFileSchema.parse({
    ...(parseYaml(yaml) as object),
    clients: [
      { client_id: 'web', redirect_uris: [`${ORIGIN}/cb`], scope: 'openid email', first_party: true },
      {
        client_id: 'partner',
        redirect_uris: [`${ORIGIN}/cb`],
        scope: 'openid email',
        client_secret: 'x'.repeat(32),
      },
    ],
  });
  return resolvePool(`pool-${randomUUID().slice(0, 8)}`, file, ORIGIN);
}

type Ending =
  | { kind: 'login'; login: LoginResult; consent: ConsentResult }
  | { kind: 'consent'; consent: ConsentResult }
  | { kind: 'denied'; error: string };

/** One interaction: calls by path, as the routes make them (bodies parsed by the same schemas). */
function interaction(
  t: { context: Context },
  pool: PoolConfig,
  {
    clientId = 'web',
    params = {},
    session,
  }: {
    clientId?: string;
    params?: Record<string, string>;
    session?: { accountId: string; uid: string };
  } = {},
) {
  const endings: Ending[] = [];
  const ended = (ending: Ending) => {
    endings.push(ending);
    return 'resume';
  };
  let cookie: string | undefined;
  const scope: LoginScope = {
    pool,
    interaction: {
      uid: randomUUID(),
      params: { client_id: clientId, scope: 'openid email', ...params },
      prompt: { name: 'login' },
      ...(session ? { session } : {}),
      exp: Math.floor(Date.now() / 1000) + 600,
    },
    oidc: {
      finishLogin: async (login, consent) => ended({ kind: 'login', login, consent }),
      finishConsent: async (consent) => ended({ kind: 'consent', consent }),
      deny: async (error) => ended({ kind: 'denied', error }),
      grantConsent: async () => 'grant-1',
    },
    ip: '192.0.2.1',
    userAgent: 'use-case test',
    log: logger,
    knownDevice: {
      read: () => cookie,
      write: (value) => {
        cookie = value;
      },
    },
  };
  const { service } = t.context;
  const call = async (path: string, body: unknown = {}) => {
    const found = service.calls.find((candidate) => candidate.path === path);
    if (!found) throw new Error(`no call ${path}`);
    const answer = found.bodyAfterChallenge
      ? await found.run(scope, async () => found.body.parse(body))
      : await found.run(scope, found.body.parse(body));
    return answer as Record<string, unknown>;
  };
  const refusal = async (path: string, body: unknown = {}) => {
    try {
      await call(path, body);
    } catch (error) {
      return error as { code: string; status: number };
    }
    throw new Error(`${path} was not refused`);
  };
  return {
    scope,
    endings,
    call,
    refusal,
    state: () => service.state(scope) as Promise<Record<string, unknown>>,
  };
}

/** The code mailed to `email` last (mail goes out after the call has answered). */
async function codeFor(t: { context: Context }, email: string): Promise<string> {
  await new Promise((resolve) => setImmediate(resolve));
  const message = t.context.mail.findLast((candidate) => candidate.to === email);
  if (!message?.code) throw new Error(`no code for ${email}`);
  return message.code;
}

/** Signs `email` up with an email code and a passkey of `authenticator`. */
async function signUp(
  t: { context: Context },
  pool: PoolConfig,
  email: string,
  authenticator: SoftAuthenticator,
) {
  const signUp = interaction(t, pool);
  await signUp.call('identify', { email });
  await signUp.call('email-otp/send');
  await signUp.call('email-otp/verify', { code: await codeFor(t, email) });
  const options = await signUp.call('passkey/register/options');
  return signUp.call('passkey/register/verify', {
    response: authenticator.register(options as never, ORIGIN),
  });
}

const SMART = 'passkeys: { mode: smart, rp: { id: localhost } }';

test('GET state of a new login answers the identify step and writes nothing', async (t) => {
  const pool = poolOf(SMART);
  const login = interaction(t, pool);
  t.like(await login.state(), { step: 'identify', methods: ['passkey'], signup_open: true });
  t.like(await login.state(), { step: 'identify' });
  t.is(await t.context.ephemeral.get(`login:${pool.id}:${login.scope.interaction.uid}`), undefined);
});

test('sign-up by email code and passkey, then a usernameless sign-in: amr and acr as the passkey proves', async (t) => {
  const pool = poolOf(SMART);
  const authenticator = new SoftAuthenticator();
  t.like(await signUp(t, pool, 'ada@acme.example', authenticator), { redirect_to: 'resume' });

  const signIn = interaction(t, pool);
  const options = await signIn.call('passkey/options');
  t.deepEqual(options.allowCredentials, [], 'any discoverable passkey');
  await signIn.call('passkey/verify', { response: authenticator.authenticate(options as never, ORIGIN) });
  const [ending] = signIn.endings;
  t.like(ending, {
    kind: 'login',
    login: { acr: 'phrh', amr: ['hwk', 'mfa', 'pop', 'user'] },
    consent: { implied: true },
  });
  const [event] = await t.context.durable.auditEvents.list(pool.id, { event: 'sign_in' });
  t.like(event, {
    outcome: 'success',
    detail: { interaction: signIn.scope.interaction.uid, methods: ['passkey'] },
  });
});

test('once an email is identified, another account’s passkey cannot sign in, and the refusal is audited', async (t) => {
  const pool = poolOf('passkeys: { mode: classic, rp: { id: localhost } }');
  const ada = new SoftAuthenticator();
  const mallory = new SoftAuthenticator();
  await signUp(t, pool, 'ada@acme.example', ada);
  await signUp(t, pool, 'mallory@acme.example', mallory);

  const login = interaction(t, pool);
  await login.call('identify', { email: 'ada@acme.example' });
  const options = await login.call('passkey/options');
  const refused = await login.refusal('passkey/verify', {
    response: mallory.authenticate({ ...(options as object), allowCredentials: [] } as never, ORIGIN),
  });
  t.is(refused.code, 'passkey_rejected');
  t.deepEqual(login.endings, []);
  const [event] = await t.context.durable.auditEvents.list(pool.id, { event: 'sign_in' });
  t.like(event, { outcome: 'failure', detail: { interaction: login.scope.interaction.uid } });
});

test('a step-up to phrh refuses a synced passkey, and finishes nothing', async (t) => {
  const pool = poolOf(SMART);
  const synced = new SoftAuthenticator({ synced: true });
  await signUp(t, pool, 'cy@acme.example', synced);
  const stepUp = interaction(t, pool, { params: { acr_values: 'phrh' } });
  t.like(await stepUp.state(), { step: 'identify', methods: ['passkey'] });
  const options = await stepUp.call('passkey/options');
  const refused = await stepUp.refusal('passkey/verify', {
    response: synced.authenticate(options as never, ORIGIN),
  });
  t.is(refused.code, 'acr_not_met');
  t.deepEqual(stepUp.endings, []);
});

test('a client that is not first-party asks for consent after the login; allowing it finishes with the grant', async (t) => {
  const pool = poolOf(SMART);
  const authenticator = new SoftAuthenticator();
  await signUp(t, pool, 'dee@acme.example', authenticator);
  const login = interaction(t, pool, { clientId: 'partner' });
  const options = await login.call('passkey/options');
  const answer = await login.call('passkey/verify', {
    response: authenticator.authenticate(options as never, ORIGIN),
  });
  t.like(answer, { step: 'consent', scopes: ['openid', 'email'] });
  await login.call('consent', { decision: 'allow' });
  t.like(login.endings, [{ kind: 'login', consent: { grantId: 'grant-1' } }]);
});

test('cancelling ends the interaction with access_denied', async (t) => {
  const login = interaction(t, poolOf(SMART));
  await login.call('abort');
  t.deepEqual(login.endings, [{ kind: 'denied', error: 'access_denied' }]);
});

test('out of order calls are refused and change nothing', async (t) => {
  const pool = poolOf(SMART);
  const login = interaction(t, pool);
  t.like(await login.refusal('passkey/register/options'), { code: 'invalid_request', status: 400 });
  t.like(await login.refusal('consent', { decision: 'allow' }), { code: 'invalid_request' });
  t.like(await login.refusal('enroll/skip'), { code: 'invalid_request' });
  t.is(await t.context.ephemeral.get(`login:${pool.id}:${login.scope.interaction.uid}`), undefined);
  t.deepEqual(login.endings, []);
});

// The pools a second factor rule and an enrolled passkey meet: what a password sign-in leads to.
const PASSWORD_POOL = (required: string) => `
passkeys: { mode: classic, rp: { id: localhost } }
authentication:
  first_factor: [password, email_otp]
  second_factor: [passkey]
  second_factor_required: ${required}
  password: { argon2: { memory_kib: 8192, iterations: 1 } }
`;

const rows: Array<[required: string, hasPasskey: boolean, expected: Record<string, unknown>]> = [
  ['never', false, { redirect: true }],
  // Where a passkey would be asked for, an account without one is offered to make it.
  ['when_enrolled', false, { step: 'enroll', methods: ['passkey'], reason: 'offer', optional: true }],
  ['when_enrolled', true, { step: 'second_factor', methods: ['passkey'] }],
  // The account never completed a second factor: a password alone must not enrol one.
  ['always', false, { step: 'second_factor', methods: ['email_otp'], reason: 'prove_email' }],
  ['always', true, { step: 'second_factor', methods: ['passkey'] }],
];

for (const [required, hasPasskey, expected] of rows) {
  test(`password sign-in, second factor ${required}, ${hasPasskey ? 'with' : 'without'} a passkey → ${JSON.stringify(expected)}`, async (t) => {
    const pool = poolOf(PASSWORD_POOL(required));
    const email = `${required}-${hasPasskey}@acme.example`;
    const signUp = interaction(t, pool);
    await signUp.call('identify', { email });
    await signUp.call('email-otp/send');
    await signUp.call('email-otp/verify', { code: await codeFor(t, email) });
    await signUp.call('password', { password: 'correct horse battery' });
    if (hasPasskey) {
      const { durable } = t.context;
      const user = await durable.users.findByEmail(pool.id, email);
      const authenticator = new SoftAuthenticator();
      const response = authenticator.register(
        {
          challenge: 'x',
          rp: { id: 'localhost', name: 'x' },
          user: { id: user!.webauthnUserId, name: email, displayName: email },
          pubKeyCredParams: [{ alg: -7, type: 'public-key' }],
        } as never,
        ORIGIN,
      );
      await durable.passkeys.create({
        poolId: pool.id,
        userId: user!.id,
        credentialId: response.id,
        publicKey: authenticator.credentials[0]!.publicKeyCose,
        counter: 0,
        transports: ['internal'],
        aaguid: '00000000-0000-0000-0000-000000000000',
        backupEligible: false,
        backupState: false,
        uvInitialized: true,
        attestationFormat: 'none',
        name: 'Key',
        discoverable: true,
      });
    }
    const login = interaction(t, pool);
    await login.call('identify', { email });
    const answer = await login.call('password', { password: 'correct horse battery' });
    if (expected.redirect) t.like(answer, { redirect_to: 'resume' });
    else t.like(answer, expected);
  });
}
