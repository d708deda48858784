/**
 * Refused passkey ceremonies through the interaction API: each test bends one
 * part of a sign-in or sign-up ceremony with the software authenticator (the
 * origin, the RP ID, a flag, the challenge, the credential, the user handle,
 * the counter) and checks four things:
 *
 * 1. the answer is 400 `passkey_rejected` with one generic description that
 *    names no reason (CONTRACT.md, "Interaction API");
 * 2. nothing changed in the database (the accounts' passkeys with their
 *    counter, last use and backup state; for sign-up, no user and no passkey);
 * 3. the audit trail has the failure with the code of the rule it broke
 *    (src/factors/refusal-codes.ts) and a reason for a person;
 * 4. the challenge is spent: an honest response to the same options fails too
 *    (STYLE.md rule 5, https://www.w3.org/TR/webauthn-3/#sctn-cryptographic-challenges).
 *
 * Sign-up refusals run serially (AVA runs serial tests before concurrent
 * ones), so they may compare whole-table row counts; sign-in refusals run
 * concurrently and compare the rows of the accounts they touch. Each test
 * talks from its own client address (X-Forwarded-For, trusted through
 * `trust_proxy`), so the per-address rate limits of the API never couple tests.
 */
import { randomBytes } from 'node:crypto';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { RefusalCode } from '../../../src/factors/refusal-codes.ts';
import { Browserless } from '../../support/browserless.ts';
import { type ApiResult, InteractionClient } from '../../support/interaction-client.ts';
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
import {
  type AssertionOverrides,
  type RegistrationOverrides,
  SoftAuthenticator,
} from '../../support/soft-authenticator.ts';

const REDIRECT = 'http://127.0.0.1:8750/callback';
/** YubiKey 5 Series with NFC, prohibited in the `no-model` pool. */
const PROHIBITED_AAGUID = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';
/** The `expiring` pool's ceremony timeout: the schema's minimum. */
const SHORT_TIMEOUT_SECONDS = 30;

/** A pool on RP ID localhost; `passkeys` adds lines (indented by two) to its passkeys block. */
const poolFile = (mode: 'smart' | 'classic', passkeys = '') => `
passkeys:
  mode: ${mode}
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
${passkeys}
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

const POOLS = {
  smart: poolFile('smart'),
  classic: poolFile('classic'),
  /** A second smart pool on the same RP ID: its credentials and challenges are its own. */
  mirror: poolFile('smart'),
  /** Only the serial sign-up tests use it. */
  signup: poolFile('smart'),
  expiring: poolFile('smart', `  timeout: ${SHORT_TIMEOUT_SECONDS}s`),
  'no-model': poolFile('smart', `  filtering:\n    prohibited_aaguids: ["${PROHIBITED_AAGUID}"]`),
  'device-only': poolFile('smart', '  filtering:\n    prohibit_backup_eligibility: true'),
};

interface Context {
  server: TestServer;
  database: TestDatabase;
  prefix: string;
  mail: MailSink;
}

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<Context>);

/** A server of the file's pools on its database, Redis prefix and mail sink. */
function startServerOn(
  { database, prefix, mail }: Omit<Context, 'server'>,
  options: Pick<StartTestServerOptions, 'clock'> = {},
) {
  return startTestServer({
    pools: POOLS,
    server: 'trust_proxy: true',
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    env: { SMTP_URL: mail.url },
    ...options,
  });
}

test.before(async (t) => {
  const database = await createTestDatabase();
  const prefix = uniqueKeyPrefix();
  const mail = await startMailSink();
  const { openStores } = await import('../../../src/storage/open-stores.ts');
  const stores = await openStores({
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  await stores.durable.migrate();
  await stores.close();
  const server = await startServerOn({ database, prefix, mail });
  t.context = { server, database, prefix, mail };
});

test.after.always(async (t) => {
  await t.context.server?.stop();
  await t.context.mail?.close();
  await t.context.database?.drop();
  if (t.context.prefix) await deleteKeysWithPrefix(t.context.prefix);
});

// ------------------------------------------------------------------ helpers

type Assertion = ReturnType<SoftAuthenticator['authenticate']>;
type Registration = ReturnType<SoftAuthenticator['register']>;
type RequestOptions = Parameters<SoftAuthenticator['authenticate']>[0];
type CreationOptions = Parameters<SoftAuthenticator['register']>[0];

/** A browser behind the trusted proxy, at its own client address. */
class BrowserAt extends Browserless {
  readonly #address: string;

  constructor(address: string) {
    super();
    this.#address = address;
  }

  override fetch(input: string | URL, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('x-forwarded-for', this.#address);
    return super.fetch(input, { ...init, headers });
  }
}

let addresses = 0;

/** Words a refusal's description must not contain: it would tell an attacker which check failed. */
const REVEALING =
  /origin|rp.?id|challenge|counter|handle|flag|presen|verif|backup|credential|aaguid|model|discoverable|expire|pool|signature|clone|type/i;
/** The one description every refusal in this file must share. */
let genericDescription: string | undefined;

/** Asserts the generic refusal: 400 `{ error: 'passkey_rejected', error_description }`. */
function assertRejected(t: ExecutionContext<Context>, result: ApiResult, what: string) {
  t.is(result.status, 400, `${what}: ${JSON.stringify(result.body)}`);
  t.deepEqual(Object.keys(result.body).sort(), ['error', 'error_description'], what);
  t.is(result.body.error, 'passkey_rejected', what);
  const description = result.body.error_description;
  t.is(typeof description, 'string', what);
  t.notRegex(String(description), REVEALING, `${what}: the description names no reason`);
  genericDescription ??= String(description);
  t.is(description, genericDescription, `${what}: every refusal reads the same`);
}

/** The code of each refusal, asserting each also has a reason for a person. */
function codesOf(t: ExecutionContext<Context>, entries: Array<{ detail: Record<string, unknown> | null }>) {
  for (const entry of entries) t.truthy(entry.detail?.reason, JSON.stringify(entry.detail));
  return entries.map((entry) => entry.detail?.code);
}

/** Refusals of `event` in one interaction, oldest first. */
async function failuresOf(server: TestServer, poolId: string, event: string, uid: string) {
  const events = await server.runtime.durable.auditEvents.list(poolId, { event, limit: 1000 });
  return events.filter((entry) => entry.outcome === 'failure' && entry.detail?.interaction === uid).reverse();
}

async function successesOf(server: TestServer, poolId: string, event: string, uid: string) {
  const events = await server.runtime.durable.auditEvents.list(poolId, { event, limit: 1000 });
  return events.filter((entry) => entry.outcome === 'success' && entry.detail?.interaction === uid);
}

/** The accounts behind `emails` and every column of their passkeys (counter, last use, backup state, ...). */
async function snapshot(server: TestServer, poolId: string, emails: string[]) {
  const { users, passkeys } = server.runtime.durable;
  return Promise.all(
    emails.map(async (email) => {
      const user = await users.findByEmail(poolId, email);
      return { email, user, passkeys: user ? await passkeys.listByUser(poolId, user.id) : [] };
    }),
  );
}

/** Whole-table row counts; only meaningful in serial tests, when nothing else signs up. */
async function rowCounts(database: TestDatabase) {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ users: number; passkeys: number }>(
      'select (select count(*) from users)::int as users, (select count(*) from passkeys)::int as passkeys',
    );
    return rows[0];
  } finally {
    await client.end();
  }
}

/** One test's view of the API, from its own client address. */
function apiFor(t: ExecutionContext<Context>, server = t.context.server) {
  const { mail } = t.context;
  addresses += 1;
  const address = `10.77.${Math.floor(addresses / 250)}.${(addresses % 250) + 1}`;
  const start = (poolId: string) =>
    InteractionClient.start(server, {
      poolId,
      clientId: 'web',
      redirectUri: REDIRECT,
      browser: new BrowserAt(address),
    });

  /** A sign-up interaction at its `enroll` step: the email proven with the mailed code. */
  async function startSignUp(poolId: string, email: string) {
    const login = await start(poolId);
    await login.identify(email);
    await login.sendCode();
    const verified = await login.verifyCode(await mail.nextCode(email));
    if (verified.body.step !== 'enroll')
      throw new Error(`expected enroll, got ${JSON.stringify(verified.body)}`);
    return login;
  }

  return {
    start,
    startSignUp,

    /** Signs `email` up with a passkey from `authenticator`; returns the account and the credential id. */
    async signUp(poolId: string, email: string, authenticator: SoftAuthenticator) {
      const login = await startSignUp(poolId, email);
      const options = await login.registerOptions();
      const response = authenticator.register(options.body as CreationOptions, server.url);
      const registered = await login.registerVerify(response);
      if (registered.status !== 200) throw new Error(`sign-up failed: ${JSON.stringify(registered.body)}`);
      const user = await server.runtime.durable.users.findByEmail(poolId, email);
      if (!user) throw new Error('sign-up created no user');
      return { user, credentialId: response.id, response };
    },

    /** An honest usernameless sign-in in a fresh interaction; throws unless it succeeds. */
    async signIn(poolId: string, authenticator: SoftAuthenticator, overrides: AssertionOverrides = {}) {
      const login = await start(poolId);
      const options = await login.passkeyOptions();
      const verified = await login.passkeyVerify(
        authenticator.authenticate(options.body as RequestOptions, server.url, overrides),
      );
      if (verified.status !== 200) throw new Error(`sign-in failed: ${JSON.stringify(verified.body)}`);
      return verified;
    },
  };
}

interface SignInRefusal {
  login: InteractionClient;
  poolId: string;
  /** Accounts whose rows must not change. */
  emails: string[];
  /** The tampered, replayed, foreign or malformed response. */
  response: unknown;
  /** An honest response to the same options: it must fail too, the refusal spent the challenge. */
  honest: () => Assertion;
  /** The code the audit trail must give. */
  code: RefusalCode;
}

/** Posts a refused assertion and checks the answer, the database, the audit trail and the spent challenge. */
async function assertSignInRefused(t: ExecutionContext<Context>, refusal: SignInRefusal) {
  const { server } = t.context;
  const { login, poolId, emails } = refusal;
  const earlier = (await failuresOf(server, poolId, 'sign_in', login.uid)).length;
  const before = await snapshot(server, poolId, emails);

  assertRejected(t, await login.passkeyVerify(refusal.response), 'the bent response');
  assertRejected(t, await login.passkeyVerify(refusal.honest()), 'an honest response to the spent challenge');

  t.deepEqual(await snapshot(server, poolId, emails), before, 'nothing changed in the database');
  const codes = codesOf(t, (await failuresOf(server, poolId, 'sign_in', login.uid)).slice(earlier));
  t.deepEqual(codes, [refusal.code, 'challenge_missing']);
}

interface RegistrationRefusal {
  login: InteractionClient;
  poolId: string;
  /** The email being signed up: it must end with no account. */
  email: string;
  /** The bent or malformed registration. */
  response: unknown;
  honest: () => Registration;
  code: RefusalCode;
}

/** Posts a refused sign-up registration; no user, no passkey, the code audited, the challenge spent. */
async function assertRegistrationRefused(t: ExecutionContext<Context>, refusal: RegistrationRefusal) {
  const { server, database } = t.context;
  const { login, poolId, email } = refusal;
  const { passkeys } = server.runtime.durable;
  const earlier = (await failuresOf(server, poolId, 'passkey_registration', login.uid)).length;
  const counts = await rowCounts(database);
  const bentId = (refusal.response as { id?: unknown } | null)?.id;
  const responseId = typeof bentId === 'string' ? bentId : undefined;
  const existing = responseId ? await passkeys.findByCredentialId(poolId, responseId) : undefined;

  assertRejected(t, await login.registerVerify(refusal.response), 'the bent registration');
  const honest = refusal.honest();
  assertRejected(t, await login.registerVerify(honest), 'an honest registration on the spent challenge');

  t.deepEqual(await rowCounts(database), counts, 'no user or passkey row was created');
  t.is(await server.runtime.durable.users.findByEmail(poolId, email), undefined, 'no account for the email');
  if (responseId) t.deepEqual(await passkeys.findByCredentialId(poolId, responseId), existing);
  t.is(await passkeys.findByCredentialId(poolId, honest.id), undefined);
  const codes = codesOf(
    t,
    (await failuresOf(server, poolId, 'passkey_registration', login.uid)).slice(earlier),
  );
  t.deepEqual(codes, [refusal.code, 'challenge_missing']);
  t.false(
    (await successesOf(server, poolId, 'sign_up', login.uid)).length > 0,
    'no sign-up was audited as a success',
  );
}

// ------------------------------------------------- sign-up (serial: row counts)

/** Starts a sign-up and returns its creation options, plus a maker of responses to them. */
async function signUpCeremony(t: ExecutionContext<Context>, poolId: string, email: string) {
  const login = await apiFor(t).startSignUp(poolId, email);
  const options = (await login.registerOptions()).body as CreationOptions;
  const register = (authenticator: SoftAuthenticator, overrides: RegistrationOverrides = {}) =>
    authenticator.register(options, t.context.server.url, overrides);
  return { login, options, register };
}

test.serial('refuses a sign-up passkey created on a foreign origin, and creates no account', async (t) => {
  const email = 'reg-origin@ceremony.example';
  const { login, register } = await signUpCeremony(t, 'signup', email);
  const authenticator = new SoftAuthenticator();
  await assertRegistrationRefused(t, {
    login,
    poolId: 'signup',
    email,
    response: register(authenticator, { origin: 'https://evil.example' }),
    honest: () => register(authenticator),
    code: 'origin_mismatch',
  });
});

test.serial(
  'refuses a sign-up passkey made without user verification where the pool requires it',
  async (t) => {
    const email = 'reg-uv@ceremony.example';
    const { login, register } = await signUpCeremony(t, 'signup', email);
    const authenticator = new SoftAuthenticator();
    await assertRegistrationRefused(t, {
      login,
      poolId: 'signup',
      email,
      response: register(authenticator, { userVerified: false }),
      honest: () => register(authenticator),
      code: 'user_verification_missing',
    });
  },
);

test.serial('refuses a non-discoverable sign-up passkey (credProps.rk false) in a smart pool', async (t) => {
  const email = 'reg-rk@ceremony.example';
  const { login, register } = await signUpCeremony(t, 'signup', email);
  const authenticator = new SoftAuthenticator();
  await assertRegistrationRefused(t, {
    login,
    poolId: 'signup',
    email,
    response: register(authenticator, { residentKey: false }),
    honest: () => register(authenticator),
    code: 'not_discoverable',
  });
});

test.serial('refuses a registration response replayed into another sign-up', async (t) => {
  const { server } = t.context;
  const first = new SoftAuthenticator();
  const owner = await apiFor(t).signUp('signup', 'reg-replay-owner@ceremony.example', first);

  const email = 'reg-replay-copycat@ceremony.example';
  const { login, register } = await signUpCeremony(t, 'signup', email);
  await assertRegistrationRefused(t, {
    login,
    poolId: 'signup',
    email,
    response: owner.response,
    honest: () => register(new SoftAuthenticator()),
    code: 'challenge_mismatch',
  });
  const credential = await server.runtime.durable.passkeys.findByCredentialId('signup', owner.credentialId);
  t.is(credential?.userId, owner.user.id, 'the credential still belongs to its owner alone');
});

test.serial('refuses a sign-up passkey from an authenticator model the pool prohibits', async (t) => {
  const email = 'reg-aaguid@ceremony.example';
  const { login, register } = await signUpCeremony(t, 'no-model', email);
  const prohibited = new SoftAuthenticator({ aaguid: PROHIBITED_AAGUID });
  await assertRegistrationRefused(t, {
    login,
    poolId: 'no-model',
    email,
    response: register(prohibited),
    honest: () => register(new SoftAuthenticator()),
    code: 'aaguid_prohibited',
  });

  // The interaction still accepts another model: the refusal is the AAGUID's.
  const options = await login.registerOptions();
  const allowed = await login.registerVerify(
    new SoftAuthenticator().register(options.body as CreationOptions, t.context.server.url),
  );
  t.is(allowed.status, 200, JSON.stringify(allowed.body));
});

test.serial('refuses a synced sign-up passkey where the pool prohibits backup eligibility', async (t) => {
  const email = 'reg-synced@ceremony.example';
  const { login, register } = await signUpCeremony(t, 'device-only', email);
  await assertRegistrationRefused(t, {
    login,
    poolId: 'device-only',
    email,
    response: register(new SoftAuthenticator({ synced: true })),
    // The honest retry is device-bound: it fails only because the challenge is spent.
    honest: () => register(new SoftAuthenticator()),
    code: 'backup_eligible_prohibited',
  });

  const options = await login.registerOptions();
  const deviceBound = await login.registerVerify(
    new SoftAuthenticator().register(options.body as CreationOptions, t.context.server.url),
  );
  t.is(deviceBound.status, 200, 'a device-bound passkey registers in the same pool');
});

test.serial(
  'refuses a sign-up passkey created in a cross-origin frame, with or without a top origin',
  async (t) => {
    for (const [label, overrides] of [
      ['framed', { crossOrigin: true }],
      ['top-origin', { crossOrigin: true, topOrigin: 'https://evil.example' }],
    ] as const) {
      const email = `reg-${label}@ceremony.example`;
      const { login, register } = await signUpCeremony(t, 'signup', email);
      const authenticator = new SoftAuthenticator();
      await assertRegistrationRefused(t, {
        login,
        poolId: 'signup',
        email,
        response: register(authenticator, overrides),
        honest: () => register(authenticator),
        code: 'cross_origin',
      });
    }
  },
);

test.serial(
  'refuses credential ids over 1023 bytes without an error page, and creates no account',
  async (t) => {
    // 3000 bytes behind a short `id`: the id in the authenticator data is what would be stored.
    for (const [bytes, responseId, code] of [
      [1024, undefined, 'credential_id_too_long'],
      [3000, randomBytes(16).toString('base64url'), 'credential_id_mismatch'],
    ] as const) {
      const email = `reg-long-id-${bytes}@ceremony.example`;
      const { login, register } = await signUpCeremony(t, 'signup', email);
      const authenticator = new SoftAuthenticator();
      await assertRegistrationRefused(t, {
        login,
        poolId: 'signup',
        email,
        response: register(authenticator, {
          credentialIdBytes: bytes,
          ...(responseId ? { responseId } : {}),
        }),
        honest: () => register(authenticator),
        code,
      });
    }
  },
);

test.serial(
  'refuses a registration whose id is not the credential id in its authenticator data',
  async (t) => {
    const email = 'reg-id-mismatch@ceremony.example';
    const { login, register } = await signUpCeremony(t, 'signup', email);
    const authenticator = new SoftAuthenticator();
    await assertRegistrationRefused(t, {
      login,
      poolId: 'signup',
      email,
      response: register(authenticator, { responseId: randomBytes(32).toString('base64url') }),
      honest: () => register(authenticator),
      code: 'credential_id_mismatch',
    });
  },
);

test.serial('refuses sign-up passkeys whose public key is unsound, and creates no account', async (t) => {
  // With `none` attestation nothing at registration uses the key: only the
  // key check stands between these and a stored passkey that fails (or is
  // forgeable) at every sign-in.
  const flip = (value: unknown) => {
    const copy = Buffer.from(value as Uint8Array);
    copy[31] = (copy[31] ?? 0) ^ 1;
    return copy;
  };
  const identity = Buffer.alloc(32);
  identity[0] = 1;
  const cases: Array<[string, RegistrationOverrides, RefusalCode]> = [
    ['wrong-curve', { coseKey: (key) => key.set(-1, 2) }, 'malformed_public_key'],
    ['off-curve', { coseKey: (key) => key.set(-3, flip(key.get(-3))) }, 'malformed_public_key'],
    ['rsa-1024', { algorithm: 'RS256', rsaModulusBits: 1024 }, 'weak_public_key'],
    ['rsa-e3', { algorithm: 'RS256', rsaExponent: 3 }, 'weak_public_key'],
    ['kty-alg', { coseKey: (key) => key.set(1, 3) }, 'malformed_public_key'],
    ['small-order', { algorithm: 'EdDSA', coseKey: (key) => key.set(-2, identity) }, 'weak_public_key'],
    ['private-d', { coseKey: (key) => key.set(-4, Buffer.alloc(32, 7)) }, 'malformed_public_key'],
  ];
  for (const [label, overrides, code] of cases) {
    const email = `reg-key-${label}@ceremony.example`;
    const { login, register } = await signUpCeremony(t, 'signup', email);
    await assertRegistrationRefused(t, {
      login,
      poolId: 'signup',
      email,
      response: register(new SoftAuthenticator(), overrides),
      honest: () => register(new SoftAuthenticator()),
      code,
    });
  }
});

/**
 * Malformed responses, each made from an honest one. The route takes any JSON
 * value as `response`, so each reaches the ceremony, which must take the
 * challenge before it looks at the shape.
 */
const MALFORMED: Array<[string, (honest: { response: object }) => unknown]> = [
  ['of a wrong type', (honest) => ({ ...honest, type: 'password' })],
  [
    'without its signature or attestation',
    (honest) => {
      const {
        signature: _signature,
        attestationObject: _attestation,
        ...rest
      } = honest.response as Record<string, unknown>;
      return { ...honest, response: rest };
    },
  ],
  ['with an oversized id', (honest) => ({ ...honest, id: 'A'.repeat(1401) })],
  ['that is a string', () => 'garbage'],
  ['that is null', () => null],
  ['that is missing', () => undefined],
];

test.serial('a malformed or wrong-type registration is refused and spends the challenge', async (t) => {
  for (const [index, [label, malform]] of MALFORMED.entries()) {
    const email = `reg-malformed-${index}@ceremony.example`;
    const { login, register } = await signUpCeremony(t, 'signup', email);
    const authenticator = new SoftAuthenticator();
    t.log(`a registration ${label}`);
    await assertRegistrationRefused(t, {
      login,
      poolId: 'signup',
      email,
      response: malform(register(authenticator)),
      honest: () => register(authenticator),
      code: 'malformed_response',
    });
  }
});

/**
 * Bodies the route guard refuses around an honest response (a member it does
 * not take, a name of the wrong type, a lone surrogate beside it, as raw JSON
 * text): 400 invalid_request, but only after the challenge is taken, so an
 * honest verification on the same challenge is refused too (issue 8, item 8).
 */
const MALFORMED_BODIES: Array<[string, (response: unknown) => string]> = [
  ['with a member it does not take', (response) => JSON.stringify({ response, extra: 1 })],
  ['with a name that is a number', (response) => JSON.stringify({ response, name: 5 })],
  [
    'with a lone surrogate beside the response',
    (response) => `{"response":${JSON.stringify(response)},"name":"\\ud800"}`,
  ],
];

/** POSTs `text` as it is, as JSON, to one of the interaction's calls. */
async function postRaw(login: InteractionClient, path: string, text: string): Promise<ApiResult> {
  const response = await login.browser.fetch(`${login.base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: text,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test.serial('a registration in a malformed body is refused and spends the challenge', async (t) => {
  for (const [index, [label, bodyOf]] of MALFORMED_BODIES.entries()) {
    const email = `reg-body-${index}@ceremony.example`;
    const { login, register } = await signUpCeremony(t, 'signup', email);
    const authenticator = new SoftAuthenticator();
    const earlier = (await failuresOf(t.context.server, 'signup', 'passkey_registration', login.uid)).length;
    const refused = await postRaw(login, '/passkey/register/verify', bodyOf(register(authenticator)));
    t.like(refused, { status: 400, body: { error: 'invalid_request' } }, `a body ${label}`);
    assertRejected(
      t,
      await login.registerVerify(register(authenticator)),
      `a body ${label}: an honest registration on the spent challenge`,
    );
    t.is(await t.context.server.runtime.durable.users.findByEmail('signup', email), undefined);
    const failures = await failuresOf(t.context.server, 'signup', 'passkey_registration', login.uid);
    t.deepEqual(codesOf(t, failures.slice(earlier)), ['challenge_missing'], label);
  }
});

test.serial('a smart pool takes a passkey from a browser that does not report credProps', async (t) => {
  // The options required a resident key, which the browser had to honour; credProps is optional.
  const email = 'reg-no-credprops@ceremony.example';
  const { login, register } = await signUpCeremony(t, 'signup', email);
  const registered = await login.registerVerify(register(new SoftAuthenticator(), { residentKey: null }));
  t.is(registered.status, 200, JSON.stringify(registered.body));
});

// ------------------------------------------------------ sign-in (concurrent)

/** A signed-up account in `poolId` and a fresh interaction with request options, ready to be bent. */
async function signInCeremony(
  t: ExecutionContext<Context>,
  poolId: string,
  email: string,
  { synced = false, server = t.context.server }: { synced?: boolean; server?: TestServer } = {},
) {
  const api = apiFor(t, server);
  const authenticator = new SoftAuthenticator({ synced });
  const account = await api.signUp(poolId, email, authenticator);
  const login = await api.start(poolId);
  const options = (await login.passkeyOptions()).body as RequestOptions;
  const assert = (overrides: AssertionOverrides = {}) =>
    authenticator.authenticate(options, server.url, overrides);
  return { api, authenticator, account, login, options, assert };
}

test('refuses an assertion from a foreign origin', async (t) => {
  const email = 'origin@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ origin: 'https://evil.example' }),
    honest: () => assert(),
    code: 'origin_mismatch',
  });
});

test('a malformed or wrong-type assertion is refused and spends the challenge', async (t) => {
  const { server } = t.context;
  const email = 'malformed@ceremony.example';
  const { login, authenticator } = await signInCeremony(t, 'smart', email);
  for (const [label, malform] of MALFORMED) {
    // Fresh options for each: every refusal spends the interaction's challenge.
    const options = (await login.passkeyOptions()).body as RequestOptions;
    t.log(`an assertion ${label}`);
    await assertSignInRefused(t, {
      login,
      poolId: 'smart',
      emails: [email],
      response: malform(authenticator.authenticate(options, server.url)),
      honest: () => authenticator.authenticate(options, server.url),
      code: 'malformed_response',
    });
  }
});

test('an assertion in a malformed body is refused and spends the challenge', async (t) => {
  const { server } = t.context;
  const email = 'malformed-body@ceremony.example';
  const { login, authenticator } = await signInCeremony(t, 'smart', email);
  for (const [label, bodyOf] of MALFORMED_BODIES) {
    const options = (await login.passkeyOptions()).body as RequestOptions;
    const earlier = (await failuresOf(server, 'smart', 'sign_in', login.uid)).length;
    const before = await snapshot(server, 'smart', [email]);
    const refused = await postRaw(
      login,
      '/passkey/verify',
      bodyOf(authenticator.authenticate(options, server.url)),
    );
    t.like(refused, { status: 400, body: { error: 'invalid_request' } }, `a body ${label}`);
    assertRejected(
      t,
      await login.passkeyVerify(authenticator.authenticate(options, server.url)),
      `a body ${label}: an honest response to the spent challenge`,
    );
    t.deepEqual(await snapshot(server, 'smart', [email]), before, 'nothing changed in the database');
    const failures = await failuresOf(server, 'smart', 'sign_in', login.uid);
    t.deepEqual(codesOf(t, failures.slice(earlier)), ['challenge_missing'], label);
  }
});

test('refuses assertions from look-alike origins', async (t) => {
  const { server } = t.context;
  const email = 'lookalike@ceremony.example';
  const { authenticator, login } = await signInCeremony(t, 'smart', email);
  const url = new URL(server.url);
  const lookAlikes = [
    `http://localhost:${Number(url.port) + 1}`,
    `https://localhost:${url.port}`,
    `http://localhost.evil.example:${url.port}`,
    `${server.url}/`,
    `http://LocalHost:${url.port}`,
  ];
  for (const origin of lookAlikes) {
    // Each refusal spends the interaction's challenge; the next look-alike gets fresh options.
    const options = (await login.passkeyOptions()).body as RequestOptions;
    await assertSignInRefused(t, {
      login,
      poolId: 'smart',
      emails: [email],
      response: authenticator.authenticate(options, server.url, { origin }),
      honest: () => authenticator.authenticate(options, server.url),
      code: 'origin_mismatch',
    });
  }
});

test('refuses assertions signed for another RP ID', async (t) => {
  const email = 'rpid@ceremony.example';
  const { authenticator, login, options, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ rpId: 'evil.example' }),
    honest: () => assert(),
    code: 'rp_id_mismatch',
  });
  // A suffix of the RP ID is not the RP ID ('host' is no parent of 'localhost', and no parent is accepted).
  const again = (await login.passkeyOptions()).body as RequestOptions;
  t.not(again.challenge, options.challenge);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: authenticator.authenticate(again, t.context.server.url, { rpId: 'host' }),
    honest: () => authenticator.authenticate(again, t.context.server.url),
    code: 'rp_id_mismatch',
  });
});

test('refuses an assertion without user verification where the pool requires it', async (t) => {
  const email = 'uv@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ userVerified: false }),
    honest: () => assert(),
    code: 'user_verification_missing',
  });
});

test('refuses an assertion without user presence', async (t) => {
  const email = 'up@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ userPresent: false }),
    honest: () => assert(),
    code: 'user_presence_missing',
  });
});

test('refuses registration client data (type webauthn.create) in an assertion', async (t) => {
  const email = 'type@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ type: 'webauthn.create' }),
    honest: () => assert(),
    code: 'client_data_type_mismatch',
  });
});

test('refuses a cross-origin assertion embedded in a foreign top origin', async (t) => {
  const email = 'top-origin@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ crossOrigin: true, topOrigin: 'https://evil.example' }),
    honest: () => assert(),
    code: 'cross_origin',
  });
});

test('refuses an assertion that says it ran in a cross-origin frame, even without a top origin', async (t) => {
  const email = 'framed@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ crossOrigin: true }),
    honest: () => assert(),
    code: 'cross_origin',
  });
});

test('refuses a replayed challenge: the same valid response succeeds once', async (t) => {
  const { server } = t.context;
  const email = 'replay@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  const response = assert();
  const first = await login.passkeyVerify(response);
  t.is(first.status, 200, JSON.stringify(first.body));
  t.truthy(first.body.redirect_to);
  const after = await snapshot(server, 'smart', [email]);

  assertRejected(t, await login.passkeyVerify(response), 'the replay');
  t.deepEqual(await snapshot(server, 'smart', [email]), after, 'only the first verification was recorded');
  t.deepEqual(codesOf(t, await failuresOf(server, 'smart', 'sign_in', login.uid)), ['challenge_missing']);
  t.is((await successesOf(server, 'smart', 'sign_in', login.uid)).length, 1);
});

test('refuses a used response replayed into another interaction as a challenge mismatch, not a clone', async (t) => {
  // The replayed assertion carries the counter the server stored from it: a
  // server that judges the counter before the challenge (and the signature)
  // mistakes every replay for a cloned authenticator.
  const { server } = t.context;
  const email = 'replay-elsewhere@ceremony.example';
  const { api, authenticator, login, assert } = await signInCeremony(t, 'smart', email);
  const response = assert();
  t.is((await login.passkeyVerify(response)).status, 200);

  const other = await api.start('smart');
  const otherOptions = (await other.passkeyOptions()).body as RequestOptions;
  await assertSignInRefused(t, {
    login: other,
    poolId: 'smart',
    emails: [email],
    response,
    honest: () => authenticator.authenticate(otherOptions, server.url),
    code: 'challenge_mismatch',
  });
  t.deepEqual(await failuresOf(server, 'smart', 'passkey_counter_regression', other.uid), []);
});

test(`refuses a challenge older than the pool's ${SHORT_TIMEOUT_SECONDS}s ceremony timeout`, async (t) => {
  // The server's clock is moved past the timeout instead of waiting for it; a
  // server of its own, so the other tests keep the real time. Redis still
  // clears the challenge when the timeout passes (its TTL is checked).
  const { prefix } = t.context;
  let ahead = 0;
  const server = await startServerOn(t.context, { clock: () => Date.now() + ahead });
  t.teardown(() => server.stop());
  const email = 'expired@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'expiring', email, { server });
  const key = `${prefix}webauthn:expiring:authentication:interaction:${login.uid}`;
  const redis = new Redis(redisTestUrl(), { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.disconnect());
  const ttl = await redis.pttl(key);
  t.true(
    ttl > (SHORT_TIMEOUT_SECONDS - 5) * 1000 && ttl <= SHORT_TIMEOUT_SECONDS * 1000,
    `the challenge lives as long as the ceremony timeout (PTTL ${ttl} ms)`,
  );
  const before = await snapshot(server, 'expiring', [email]);

  ahead = SHORT_TIMEOUT_SECONDS * 1000;
  assertRejected(t, await login.passkeyVerify(assert()), 'an honest response after the timeout');
  t.is(await redis.exists(key), 0, 'the refused verification took the challenge');
  t.deepEqual(await snapshot(server, 'expiring', [email]), before);
  t.deepEqual(codesOf(t, await failuresOf(server, 'expiring', 'sign_in', login.uid)), ['challenge_missing']);

  // A second before the timeout, an honest response still signs in.
  ahead = 0;
  const again = await signInCeremony(t, 'expiring', 'in-time@ceremony.example', { server });
  ahead = (SHORT_TIMEOUT_SECONDS - 1) * 1000;
  const verified = await again.login.passkeyVerify(again.assert());
  t.is(verified.status, 200, JSON.stringify(verified.body));
});

test('refuses a response to another interaction’s challenge', async (t) => {
  const { server } = t.context;
  const email = 'other-interaction@ceremony.example';
  const { api, authenticator, login: first, assert: assertFirst } = await signInCeremony(t, 'smart', email);
  const second = await api.start('smart');
  const secondOptions = (await second.passkeyOptions()).body as RequestOptions;
  await assertSignInRefused(t, {
    login: second,
    poolId: 'smart',
    emails: [email],
    response: assertFirst(),
    honest: () => authenticator.authenticate(secondOptions, server.url),
    code: 'challenge_mismatch',
  });
  // The first interaction's challenge was never touched: it is bound to its own interaction.
  const own = await first.passkeyVerify(assertFirst());
  t.is(own.status, 200, JSON.stringify(own.body));
});

test('refuses a response to another pool’s challenge, for the same email', async (t) => {
  const { server } = t.context;
  const email = 'other-pool-challenge@ceremony.example';
  const api = apiFor(t);
  const authenticator = new SoftAuthenticator();
  const inSmart = await api.signUp('smart', email, authenticator);
  const inMirror = await api.signUp('mirror', email, authenticator);
  t.not(inSmart.user.id, inMirror.user.id);

  const smartLogin = await api.start('smart');
  const smartOptions = (await smartLogin.passkeyOptions()).body as RequestOptions;
  const mirrorLogin = await api.start('mirror');
  const mirrorOptions = (await mirrorLogin.passkeyOptions()).body as RequestOptions;
  const credentialId = inMirror.credentialId;
  const before = await snapshot(server, 'smart', [email]);
  await assertSignInRefused(t, {
    login: mirrorLogin,
    poolId: 'mirror',
    emails: [email],
    // The mirror pool's own credential, answering the smart pool's challenge.
    response: authenticator.authenticate(smartOptions, server.url, { credentialId }),
    honest: () => authenticator.authenticate(mirrorOptions, server.url, { credentialId }),
    code: 'challenge_mismatch',
  });
  t.deepEqual(await snapshot(server, 'smart', [email]), before);
});

test('refuses a credential registered in another pool', async (t) => {
  const { server } = t.context;
  const email = 'other-pool-credential@ceremony.example';
  const api = apiFor(t);
  const authenticator = new SoftAuthenticator();
  await api.signUp('smart', email, authenticator);
  const login = await api.start('mirror');
  const options = (await login.passkeyOptions()).body as RequestOptions;
  const before = await snapshot(server, 'smart', [email]);
  await assertSignInRefused(t, {
    login,
    poolId: 'mirror',
    emails: [email],
    response: authenticator.authenticate(options, server.url),
    honest: () => authenticator.authenticate(options, server.url),
    code: 'unknown_credential',
  });
  t.deepEqual(await snapshot(server, 'smart', [email]), before, 'the home pool’s row is untouched');
  t.is(await server.runtime.durable.users.findByEmail('mirror', email), undefined);
});

test('refuses a user handle that is not the credential owner’s', async (t) => {
  const { server } = t.context;
  const email = 'handle-owner@ceremony.example';
  const otherEmail = 'handle-other@ceremony.example';
  const { api, authenticator, login, assert } = await signInCeremony(t, 'smart', email);
  const other = await api.signUp('smart', otherEmail, new SoftAuthenticator());
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email, otherEmail],
    response: assert({ userHandle: other.user.webauthnUserId }),
    honest: () => assert(),
    code: 'user_handle_mismatch',
  });
  const options = (await login.passkeyOptions()).body as RequestOptions;
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email, otherEmail],
    response: authenticator.authenticate(options, server.url, {
      userHandle: randomBytes(32).toString('base64url'),
    }),
    honest: () => authenticator.authenticate(options, server.url),
    code: 'user_handle_mismatch',
  });
});

test('refuses a usernameless assertion without a user handle in a smart pool', async (t) => {
  const email = 'handle-missing@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ userHandle: null }),
    honest: () => assert(),
    code: 'user_handle_missing',
  });
});

test('refuses a credential the server never registered', async (t) => {
  const { server } = t.context;
  const email = 'unknown-credential@ceremony.example';
  const { login, options } = await signInCeremony(t, 'smart', email);
  // A credential made on the authenticator alone, for options the server never issued.
  const stranger = new SoftAuthenticator();
  stranger.register(
    {
      challenge: randomBytes(32).toString('base64url'),
      rp: { id: 'localhost', name: 'localhost' },
      user: { id: randomBytes(32).toString('base64url'), name: email, displayName: email },
      pubKeyCredParams: [{ alg: -7, type: 'public-key' }],
    },
    server.url,
  );
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: stranger.authenticate(options, server.url),
    honest: () => stranger.authenticate(options, server.url),
    code: 'unknown_credential',
  });
});

test('refuses another user’s passkey after identifying in a classic pool', async (t) => {
  const { server } = t.context;
  const email = 'classic-a@ceremony.example';
  const otherEmail = 'classic-b@ceremony.example';
  const api = apiFor(t);
  const mine = new SoftAuthenticator();
  const theirs = new SoftAuthenticator();
  await api.signUp('classic', email, mine);
  const other = await api.signUp('classic', otherEmail, theirs);

  const login = await api.start('classic');
  t.is((await login.identify(email)).body.step, 'first_factor');
  const options = (await login.passkeyOptions()).body as RequestOptions;
  t.false(options.allowCredentials?.some((credential) => credential.id === other.credentialId));
  await assertSignInRefused(t, {
    login,
    poolId: 'classic',
    emails: [email, otherEmail],
    response: theirs.authenticate(options, server.url, { credentialId: other.credentialId }),
    honest: () => mine.authenticate(options, server.url),
    code: 'wrong_user',
  });

  // Identified with an email that has no account, the same passkey is refused alike.
  const stranger = await api.start('classic');
  await stranger.identify('classic-nobody@ceremony.example');
  const decoyOptions = (await stranger.passkeyOptions()).body as RequestOptions;
  await assertSignInRefused(t, {
    login: stranger,
    poolId: 'classic',
    emails: [email, otherEmail],
    response: theirs.authenticate(decoyOptions, server.url, { credentialId: other.credentialId }),
    honest: () => theirs.authenticate(decoyOptions, server.url, { credentialId: other.credentialId }),
    code: 'wrong_user',
  });
});

test('refuses another user’s discoverable passkey after identifying in a smart pool', async (t) => {
  const { server } = t.context;
  const email = 'smart-a@ceremony.example';
  const otherEmail = 'smart-b@ceremony.example';
  const api = apiFor(t);
  const mine = new SoftAuthenticator();
  const theirs = new SoftAuthenticator();
  const own = await api.signUp('smart', email, mine);
  const other = await api.signUp('smart', otherEmail, theirs);

  // Identified: the options are that user's, as in a classic pool, and only their passkey answers.
  const login = await api.start('smart');
  t.is((await login.identify(email)).body.step, 'first_factor');
  const options = (await login.passkeyOptions()).body as RequestOptions;
  t.deepEqual(
    options.allowCredentials?.map((credential) => credential.id),
    [own.credentialId],
    'only the identified user’s passkey is offered',
  );
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email, otherEmail],
    response: theirs.authenticate(options, server.url, { credentialId: other.credentialId }),
    honest: () => mine.authenticate(options, server.url),
    code: 'wrong_user',
  });
  const refused = await failuresOf(server, 'smart', 'sign_in', login.uid);
  t.is(refused[0]?.userId, other.user.id, 'the audit row names the passkey’s owner');

  // Options fetched before the email was typed (autofill) bind no one, yet the email now does.
  const early = await api.start('smart');
  const usernameless = (await early.passkeyOptions()).body as RequestOptions;
  t.deepEqual(usernameless.allowCredentials, [], 'the identify step stays usernameless');
  await early.identify(email);
  await assertSignInRefused(t, {
    login: early,
    poolId: 'smart',
    emails: [email, otherEmail],
    response: theirs.authenticate(usernameless, server.url, { credentialId: other.credentialId }),
    honest: () => mine.authenticate(usernameless, server.url),
    code: 'wrong_user',
  });

  // An email without an account gets decoys, and a real passkey is refused alike.
  const stranger = await api.start('smart');
  await stranger.identify('smart-nobody@ceremony.example');
  const decoys = (await stranger.passkeyOptions()).body as RequestOptions;
  t.true((decoys.allowCredentials?.length ?? 0) > 0, 'decoys, as for an account');
  await assertSignInRefused(t, {
    login: stranger,
    poolId: 'smart',
    emails: [email, otherEmail],
    response: theirs.authenticate(decoys, server.url, { credentialId: other.credentialId }),
    honest: () => theirs.authenticate(decoys, server.url, { credentialId: other.credentialId }),
    code: 'wrong_user',
  });

  // The identified user's own passkey signs them in.
  const options2 = (await login.passkeyOptions()).body as RequestOptions;
  const verified = await login.passkeyVerify(mine.authenticate(options2, server.url));
  t.is(verified.status, 200, JSON.stringify(verified.body));
  const { claims } = await login.finish(String(verified.body.redirect_to));
  t.is(claims.sub, own.user.id);
});

test('refuses a device-bound passkey whose counter does not increase, and flags a possible clone', async (t) => {
  const { server } = t.context;
  const email = 'counter@ceremony.example';
  const api = apiFor(t);
  const authenticator = new SoftAuthenticator();
  const { user } = await api.signUp('smart', email, authenticator);
  await api.signIn('smart', authenticator);
  await api.signIn('smart', authenticator);
  const [stored] = await server.runtime.durable.passkeys.listByUser('smart', user.id);
  t.is(stored?.counter, 2, 'two honest sign-ins raised the stored counter');

  const login = await api.start('smart');
  for (const signCount of [2, 1]) {
    const options = (await login.passkeyOptions()).body as RequestOptions;
    await assertSignInRefused(t, {
      login,
      poolId: 'smart',
      emails: [email],
      response: authenticator.authenticate(options, server.url, { signCount }),
      honest: () => authenticator.authenticate(options, server.url),
      code: 'counter_regression',
    });
  }
  const flagged = await failuresOf(server, 'smart', 'passkey_counter_regression', login.uid);
  t.deepEqual(
    flagged.map((entry) => [entry.userId, entry.credentialId, entry.detail?.code]),
    [
      [user.id, stored?.credentialId, 'counter_regression'],
      [user.id, stored?.credentialId, 'counter_regression'],
    ],
  );
});

test('flags a possible clone only for a correctly signed assertion', async (t) => {
  // Credential ids are not secret (classic pools list them in allowCredentials),
  // so an unsigned "low counter" must not raise the cloned-authenticator alarm
  // (https://www.w3.org/TR/webauthn-3/#sctn-verifying-assertion: the counter is
  // step 22, after the signature, step 21).
  const { server } = t.context;
  const email = 'counter-forged@ceremony.example';
  const api = apiFor(t);
  const authenticator = new SoftAuthenticator();
  const { user } = await api.signUp('smart', email, authenticator);
  await api.signIn('smart', authenticator);

  const login = await api.start('smart');
  const options = (await login.passkeyOptions()).body as RequestOptions;
  const lowCounter = authenticator.authenticate(options, server.url, { signCount: 1 });
  // A well-formed ES256 signature, but over other data: what a forger without the key can send.
  const otherSignature = authenticator.authenticate(options, server.url, { origin: 'https://evil.example' });
  const forged = {
    ...lowCounter,
    response: { ...lowCounter.response, signature: otherSignature.response.signature },
  };
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: forged,
    honest: () => authenticator.authenticate(options, server.url),
    code: 'signature_invalid',
  });
  t.deepEqual(await failuresOf(server, 'smart', 'passkey_counter_regression', login.uid), []);
  const flagged = await server.runtime.durable.auditEvents.list('smart', {
    event: 'passkey_counter_regression',
    userId: user.id,
  });
  t.is(flagged.length, 0, 'no clone alarm for the account');
});

test('EdDSA and RS256 passkeys register and sign in, as ES256 ones do', async (t) => {
  const { server } = t.context;
  const api = apiFor(t);
  for (const algorithm of ['EdDSA', 'RS256'] as const) {
    const authenticator = new SoftAuthenticator();
    const login = await api.startSignUp('smart', `alg-${algorithm}@ceremony.example`);
    const options = (await login.registerOptions()).body as CreationOptions;
    const registered = await login.registerVerify(authenticator.register(options, server.url, { algorithm }));
    t.is(registered.status, 200, `${algorithm}: ${JSON.stringify(registered.body)}`);
    const signedIn = await api.signIn('smart', authenticator);
    t.truthy(signedIn.body.redirect_to, algorithm);
  }
});

test('accepts a synced passkey that always reports counter 0', async (t) => {
  const { server } = t.context;
  const email = 'synced-counter@ceremony.example';
  const api = apiFor(t);
  const authenticator = new SoftAuthenticator({ synced: true });
  const { user } = await api.signUp('smart', email, authenticator);
  for (let attempt = 0; attempt < 4; attempt++) await api.signIn('smart', authenticator);
  const [stored] = await server.runtime.durable.passkeys.listByUser('smart', user.id);
  t.is(stored?.counter, 0);
  t.true(stored?.backupEligible);
  t.true(stored?.backupState);
  t.truthy(stored?.lastUsedAt);
  const flagged = await server.runtime.durable.auditEvents.list('smart', {
    event: 'passkey_counter_regression',
    userId: user.id,
  });
  t.is(flagged.length, 0);
});

test('refuses an assertion whose backup eligibility differs from registration', async (t) => {
  const email = 'be-device@ceremony.example';
  const { login, assert } = await signInCeremony(t, 'smart', email);
  await assertSignInRefused(t, {
    login,
    poolId: 'smart',
    emails: [email],
    response: assert({ backupEligible: true }),
    honest: () => assert(),
    code: 'backup_eligibility_changed',
  });

  const syncedEmail = 'be-synced@ceremony.example';
  const synced = await signInCeremony(t, 'smart', syncedEmail, { synced: true });
  await assertSignInRefused(t, {
    login: synced.login,
    poolId: 'smart',
    emails: [syncedEmail],
    response: synced.assert({ backupEligible: false, backupState: false }),
    honest: () => synced.assert(),
    code: 'backup_eligibility_changed',
  });
});

test('of concurrent verifications of one challenge, exactly one succeeds', async (t) => {
  const { server } = t.context;
  const email = 'concurrent@ceremony.example';
  const { account, login, assert } = await signInCeremony(t, 'smart', email);
  const response = assert();
  const started = new Date();
  const results = await Promise.all(Array.from({ length: 8 }, () => login.passkeyVerify(response)));

  const succeeded = results.filter((result) => result.status === 200);
  const refused = results.filter((result) => result.status !== 200);
  t.is(succeeded.length, 1, JSON.stringify(results.map((result) => result.status)));
  t.is(refused.length, 7);
  for (const result of refused) assertRejected(t, result, 'a losing verification');

  const [stored] = await server.runtime.durable.passkeys.listByUser('smart', account.user.id);
  t.is(stored?.counter, 1);
  t.true((stored?.lastUsedAt?.getTime() ?? 0) >= started.getTime() - 1_000);
  t.is((await successesOf(server, 'smart', 'sign_in', login.uid)).length, 1, 'one sign-in recorded');
  t.deepEqual(
    codesOf(t, await failuresOf(server, 'smart', 'sign_in', login.uid)),
    Array(7).fill('challenge_missing'),
  );
});
