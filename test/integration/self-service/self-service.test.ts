/**
 * The self-service API (`/{pool}/api/self/…`) with real access tokens: users
 * sign up through the interaction API (email code, then a software passkey),
 * redeem the code, and manage their passkeys, password and recovery codes
 * with the access token. Tokens the API must refuse (stale, without
 * auth_time, DPoP-bound, expired) are copies of a real token's stored
 * payload with one field changed, so no test waits for a clock.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { storedIdOf } from '../../../src/oidc/adapter.ts';
import { Browserless } from '../../support/browserless.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { probePostgres, probeRedis, serviceTest } from '../../support/services.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  type LoginFixture,
  type LoginServer,
  mailedCode,
  openLoginFixture,
  REDIRECT,
  signUp,
  startLogin,
} from '../login/login-fixture.ts';
import { SIGNED_IN, SIGNED_OUT, startOffline, tokensOf, whatStillWorks } from './signed-in-checks.ts';

interface Context {
  fixture: LoginFixture;
}

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<Context>);

test.before(async (t) => {
  t.context.fixture = await openLoginFixture();
});

test.after.always(async (t) => {
  await t.context.fixture?.close();
});

const MACHINE_SECRET = 'machine-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

/**
 * A pool file with a first-party `web` (which may ask for refresh tokens), a
 * third-party `partner` and a client-credentials `machine`.
 */
function poolFile({
  authentication = '',
  maxPerUser = 10,
}: {
  authentication?: string;
  maxPerUser?: number;
}) {
  return `
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
  registration:
    max_per_user: ${maxPerUser}
${authentication ? `authentication:\n${authentication}` : ''}
self_service:
  recent_auth: 5m
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
    first_party: true
  - client_id: partner
    client_name: Partner App
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
  - client_id: machine
    client_secret: ${MACHINE_SECRET}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: admin
`;
}

const POOLS = {
  /** Passkeys and email codes (the defaults), at most two passkeys each. */
  acme: poolFile({ maxPerUser: 2 }),
  /** Passkeys only: the last one is the only way in. */
  strict: poolFile({ authentication: '  first_factor: [passkey]\n' }),
  /** Passwords too; cheap argon2 for the test. */
  words: poolFile({
    authentication:
      '  first_factor: [passkey, email_otp, password]\n  password:\n    argon2: { memory_kib: 8192, iterations: 1 }\n',
  }),
  /** Recovery codes: a second factor once enrolled. */
  codes: poolFile({
    authentication:
      '  first_factor: [email_otp, passkey]\n  second_factor: [passkey, recovery_code]\n  second_factor_required: when_enrolled\n',
  }),
};

type PoolIds = { [K in keyof typeof POOLS]: string };

/** A server for this test, with its own pool ids (the database is shared by the file's tests). */
async function serve(t: ExecutionContext<Context>, tag: string): Promise<LoginServer & { P: PoolIds }> {
  const P = Object.fromEntries(Object.keys(POOLS).map((id) => [id, `${tag}-${id}`])) as PoolIds;
  const files = Object.fromEntries(Object.entries(POOLS).map(([id, file]) => [`${tag}-${id}`, file]));
  return { ...(await t.context.fixture.start(t, files)), P };
}

interface ApiAnswer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes
  body: any;
}

/** Calls the self-service API of `poolId` with `token` (none when undefined). */
async function api(
  server: TestServer,
  poolId: string,
  token: string | undefined,
  method: string,
  path: string,
  { json, body, headers = {} }: { json?: unknown; body?: string; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const response = await fetch(`${server.url}/${poolId}/api/self/${path}`, {
    method,
    headers: {
      accept: 'application/json',
      'user-agent': 'self-service-test',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: json === undefined ? body : JSON.stringify(json),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

interface SignedIn {
  token: string;
  userId: string;
  email: string;
  authenticator: SoftAuthenticator;
}

/** Signs `email` up with a new software passkey and returns the user's access token. */
async function signedUp(login: LoginServer, mail: LoginFixture['mail'], poolId: string, email: string) {
  const authenticator = new SoftAuthenticator();
  const { login: client, answer } = await signUp(login.server, mail, poolId, email, authenticator);
  const { tokens, claims } = await client.finish(String(answer.body.redirect_to));
  return { token: tokens.access_token, userId: claims.sub, email, authenticator } satisfies SignedIn;
}

/** Adds a passkey through the API: options, then the software authenticator's answer. */
async function addPasskey(server: TestServer, poolId: string, user: SignedIn, name?: string) {
  const options = await api(server, poolId, user.token, 'POST', 'passkeys/register/options', { json: {} });
  if (options.status !== 200) return { options, verified: undefined };
  const response = user.authenticator.register(options.body, server.url);
  const verified = await api(server, poolId, user.token, 'POST', 'passkeys/register/verify', {
    json: name === undefined ? { response } : { response, name },
  });
  return { options, verified };
}

/** A copy of `token` (same grant and client) with its stored payload changed by `change`. */
async function forgedCopy(
  server: TestServer,
  poolId: string,
  token: string,
  change: (payload: Record<string, unknown>) => Record<string, unknown>,
): Promise<string> {
  // Access tokens are stored under the hash of their value (src/oidc/adapter.ts).
  const store = server.runtime.ephemeral.oidcModels(poolId);
  const payload = await store.find('AccessToken', storedIdOf('AccessToken', token));
  if (!payload) throw new Error('the access token is not stored');
  const jti = randomBytes(32).toString('base64url');
  await store.upsert('AccessToken', storedIdOf('AccessToken', jti), change(payload), 600);
  return jti;
}

const now = () => Math.floor(Date.now() / 1000);

test('lists the passkeys and adds a second one, excluding the first', async (t) => {
  const login = await serve(t, 'list');
  const { server, P } = login;
  const ada = await signedUp(login, t.context.fixture.mail, P.acme, `ada@${P.acme}.example`);

  const listed = await api(server, P.acme, ada.token, 'GET', 'passkeys');
  t.is(listed.status, 200);
  t.is(listed.body.length, 1);
  const [first] = listed.body;
  t.deepEqual(Object.keys(first).sort(), [
    'aaguid',
    'authenticator',
    'backed_up',
    'created_at',
    'device_bound',
    'id',
    'last_used_at',
    'name',
  ]);
  t.like(first, {
    aaguid: '00000000-0000-0000-0000-000000000000',
    authenticator: null,
    backed_up: false,
    device_bound: true,
    last_used_at: null,
    name: 'Passkey on this device',
  });
  t.false(Number.isNaN(Date.parse(first.created_at)));

  // A YubiKey 5 (its AAGUID is in the community list), synced flags off.
  const yubikey = new SoftAuthenticator({ aaguid: 'cb69481e-8ff7-4039-93ec-0a2729a154a8' });
  const second = { ...ada, authenticator: yubikey };
  const { options, verified } = await addPasskey(server, P.acme, second, '  Desk key ');
  t.is(options.status, 200, JSON.stringify(options.body));
  t.deepEqual(
    options.body.excludeCredentials.map((credential: { id: string }) => credential.id),
    ada.authenticator.credentials.map((credential) => credential.id.toString('base64url')),
  );
  t.is(options.body.user.name, `${ada.email} (${P.acme})`, 'a pool without display_name is named by its id');
  t.is(verified?.status, 201, JSON.stringify(verified?.body));
  t.like(verified?.body, {
    name: 'Desk key',
    aaguid: 'cb69481e-8ff7-4039-93ec-0a2729a154a8',
    device_bound: true,
  });
  t.is(typeof verified?.body.authenticator, 'string', 'the AAGUID names the model');
  t.is(verified?.body.recovery_codes, undefined, 'this pool does not use recovery codes');

  const after = await api(server, P.acme, ada.token, 'GET', 'passkeys');
  t.deepEqual(
    after.body.map((passkey: { name: string }) => passkey.name),
    ['Passkey on this device', 'Desk key'],
  );

  // The new passkey signs in.
  const again = await startLogin(server, P.acme);
  const request = await again.passkeyOptions();
  const signedIn = await again.passkeyVerify(yubikey.authenticate(request.body as never, server.url));
  const { claims } = await again.finish(String(signedIn.body.redirect_to));
  t.is(claims.sub, ada.userId);

  const limit = await api(server, P.acme, ada.token, 'POST', 'passkeys/register/options', { json: {} });
  t.like(limit, { status: 400, body: { error: 'passkey_limit' } });

  const replayed = await api(server, P.acme, ada.token, 'POST', 'passkeys/register/verify', {
    json: { response: new SoftAuthenticator().register(options.body, server.url) },
  });
  t.like(replayed, { status: 400, body: { error: 'passkey_rejected' } }, 'the challenge was used');

  const events = await server.runtime.durable.auditEvents.list(P.acme, {
    userId: ada.userId,
    event: 'passkey_registration',
  });
  const added = events.find((event) => event.outcome === 'success' && event.detail?.via === 'self_service');
  t.like(added, { ip: '::ffff:127.0.0.1', userAgent: 'self-service-test' });
  t.like(added?.detail, { via: 'self_service', client_id: 'web' });
  t.true(
    events.some((event) => event.outcome === 'failure' && event.detail?.code === 'passkey_limit'),
    'the limit is audited',
  );
});

test('renames and deletes a passkey; another user, a foreign id and another pool get 404 or 401', async (t) => {
  const login = await serve(t, 'rename');
  const { server, P } = login;
  const { mail } = t.context.fixture;
  const ada = await signedUp(login, mail, P.acme, `ada@${P.acme}.example`);
  const bob = await signedUp(login, mail, P.acme, `bob@${P.acme}.example`);
  const [adaKey] = (await api(server, P.acme, ada.token, 'GET', 'passkeys')).body;

  const renamed = await api(server, P.acme, ada.token, 'PATCH', `passkeys/${adaKey.id}`, {
    json: { name: 'Laptop 💻' },
  });
  t.is(renamed.status, 200, JSON.stringify(renamed.body));
  t.like(renamed.body, { id: adaKey.id, name: 'Laptop 💻' });
  t.is((await api(server, P.acme, ada.token, 'GET', 'passkeys')).body[0].name, 'Laptop 💻');

  for (const name of ['', '   ', 'x'.repeat(65), 'tab\there', 'new\nline']) {
    const refused = await api(server, P.acme, ada.token, 'PATCH', `passkeys/${adaKey.id}`, {
      json: { name },
    });
    t.like(refused, { status: 400, body: { error: 'invalid_request' } }, JSON.stringify(name));
  }

  // Bob cannot see, rename or delete Ada's passkey.
  const bobList = await api(server, P.acme, bob.token, 'GET', 'passkeys');
  t.false(bobList.body.some((passkey: { id: string }) => passkey.id === adaKey.id));
  const bobRename = await api(server, P.acme, bob.token, 'PATCH', `passkeys/${adaKey.id}`, {
    json: { name: 'mine now' },
  });
  t.like(bobRename, { status: 404, body: { error: 'not_found' } });
  t.like(await api(server, P.acme, bob.token, 'DELETE', `passkeys/${adaKey.id}`), { status: 404 });
  for (const id of [randomUUID(), 'not-a-uuid', '1']) {
    t.like(await api(server, P.acme, ada.token, 'DELETE', `passkeys/${id}`), { status: 404 }, id);
  }

  // A token of another pool is not a token here.
  const carol = await signedUp(login, mail, P.strict, `carol@${P.acme}.example`);
  t.like(await api(server, P.acme, carol.token, 'GET', 'passkeys'), {
    status: 401,
    body: { error: 'invalid_token' },
  });
  t.like(await api(server, P.strict, ada.token, 'DELETE', `passkeys/${adaKey.id}`), { status: 401 });

  // Email codes still sign Ada in, so her only passkey may go.
  const deleted = await api(server, P.acme, ada.token, 'DELETE', `passkeys/${adaKey.id}`);
  t.like(deleted, { status: 200, body: { signed_out: { sessions: 0, apps: 0 } } }, 'no other browser');
  t.deepEqual((await api(server, P.acme, ada.token, 'GET', 'passkeys')).body, []);
  t.like(await api(server, P.acme, ada.token, 'DELETE', `passkeys/${adaKey.id}`), { status: 404 });

  const events = await server.runtime.durable.auditEvents.list(P.acme, { userId: ada.userId });
  t.deepEqual(
    events.filter((event) => event.detail?.via === 'self_service').map((event) => event.event),
    ['signed_out_elsewhere', 'passkey_removed', 'passkey_renamed'],
  );
  t.is(
    events.find((event) => event.event === 'passkey_removed')?.credentialId,
    ada.authenticator.credentials[0]?.id.toString('base64url'),
  );
  t.is(
    (await server.runtime.durable.auditEvents.list(P.acme, { userId: bob.userId, event: 'passkey_removed' }))
      .length,
    0,
  );
});

test('refuses to delete the last way in', async (t) => {
  const login = await serve(t, 'last');
  const { server, P } = login;
  const carol = await signedUp(login, t.context.fixture.mail, P.strict, `carol@${P.acme}.example`);
  const [only] = (await api(server, P.strict, carol.token, 'GET', 'passkeys')).body;

  const refused = await api(server, P.strict, carol.token, 'DELETE', `passkeys/${only.id}`);
  t.like(refused, { status: 409, body: { error: 'last_way_in' } });
  t.is(await server.runtime.durable.passkeys.countByUser(P.strict, carol.userId), 1);

  const { verified } = await addPasskey(server, P.strict, carol);
  t.is(verified?.status, 201, JSON.stringify(verified?.body));
  t.is((await api(server, P.strict, carol.token, 'DELETE', `passkeys/${only.id}`)).status, 200);
  const refusedAgain = await api(server, P.strict, carol.token, 'DELETE', `passkeys/${verified?.body.id}`);
  t.like(refusedAgain, { status: 409, body: { error: 'last_way_in' } });
  t.is(await server.runtime.durable.passkeys.countByUser(P.strict, carol.userId), 1);

  // Two removals at once cannot both pass the check.
  const { verified: third } = await addPasskey(server, P.strict, carol);
  const both = await Promise.all(
    [verified?.body.id, third?.body.id].map((id) =>
      api(server, P.strict, carol.token, 'DELETE', `passkeys/${id}`),
    ),
  );
  t.is(both.filter((answer) => answer.status === 200).length, 1, JSON.stringify(both.map((a) => a.body)));
  t.is(await server.runtime.durable.passkeys.countByUser(P.strict, carol.userId), 1);
});

test('writes need a recent authentication; reading does not', async (t) => {
  const login = await serve(t, 'recent');
  const { server, P } = login;
  const ada = await signedUp(login, t.context.fixture.mail, P.acme, `ada@${P.acme}.example`);
  const [passkey] = (await api(server, P.acme, ada.token, 'GET', 'passkeys')).body;

  const stale = await forgedCopy(server, P.acme, ada.token, (payload) => ({
    ...payload,
    extra: { auth_time: now() - 301 },
  }));
  const without = await forgedCopy(server, P.acme, ada.token, (payload) => ({ ...payload, extra: {} }));
  const fresh = await forgedCopy(server, P.acme, ada.token, (payload) => ({
    ...payload,
    extra: { auth_time: now() - 290 },
  }));

  for (const token of [stale, without]) {
    t.is((await api(server, P.acme, token, 'GET', 'passkeys')).status, 200, 'reading works');
    const writes = await Promise.all([
      api(server, P.acme, token, 'POST', 'passkeys/register/options', { json: {} }),
      api(server, P.acme, token, 'PATCH', `passkeys/${passkey.id}`, { json: { name: 'renamed' } }),
      api(server, P.acme, token, 'DELETE', `passkeys/${passkey.id}`),
      api(server, P.acme, token, 'POST', 'recovery-codes'),
      api(server, P.acme, token, 'PUT', 'password', { json: { password: 'a long enough password' } }),
    ]);
    for (const write of writes) {
      t.like(write, { status: 401, body: { error: 'login_required' } });
      t.is(typeof write.body.error_description, 'string');
      t.regex(
        write.headers.get('www-authenticate') ?? '',
        /^Bearer error="insufficient_user_authentication".*max_age="300"/,
      );
    }
  }
  t.is(await server.runtime.durable.passkeys.countByUser(P.acme, ada.userId), 1);
  t.is((await api(server, P.acme, ada.token, 'GET', 'passkeys')).body[0].name, passkey.name);

  const renamed = await api(server, P.acme, fresh, 'PATCH', `passkeys/${passkey.id}`, {
    json: { name: 'ok' },
  });
  t.is(renamed.status, 200, 'an authentication within the window is recent enough');
});

test('refuses tokens that are missing, garbage, expired, DPoP-bound, client credentials or third-party', async (t) => {
  const login = await serve(t, 'tokens');
  const { server, P } = login;
  const { mail } = t.context.fixture;
  const ada = await signedUp(login, mail, P.acme, `ada@${P.acme}.example`);

  const machine = await fetch(`${server.issuer(P.acme)}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`machine:${MACHINE_SECRET}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials&scope=admin',
  });
  t.is(machine.status, 200);
  const { access_token: clientCredentials } = (await machine.json()) as { access_token: string };

  const expired = await forgedCopy(server, P.acme, ada.token, (payload) => ({
    ...payload,
    iat: now() - 1000,
    exp: now() - 60, // beyond oidc-provider's clock tolerance (15 s)
  }));
  const dpop = await forgedCopy(server, P.acme, ada.token, (payload) => ({
    ...payload,
    jkt: randomBytes(32).toString('base64url'),
  }));

  const missing = await api(server, P.acme, undefined, 'GET', 'passkeys');
  t.like(missing, { status: 401, body: { error: 'invalid_token' } });
  t.is(missing.headers.get('www-authenticate'), 'Bearer');

  for (const [label, header] of [
    ['garbage', 'Bearer not-a-token'],
    ['client credentials', `Bearer ${clientCredentials}`],
    ['expired', `Bearer ${expired}`],
    ['DPoP-bound', `Bearer ${dpop}`],
    ['DPoP scheme', `DPoP ${ada.token}`],
    ['basic', `Basic ${Buffer.from('a:b').toString('base64')}`],
    ['long', `Bearer ${'a'.repeat(8_000)}`],
  ]) {
    for (const [method, path] of [
      ['GET', 'passkeys'],
      ['POST', 'recovery-codes'],
    ]) {
      const answer = await api(server, P.acme, undefined, method ?? '', path ?? '', {
        headers: { authorization: header ?? '' },
      });
      t.like(answer, { status: 401, body: { error: 'invalid_token' } }, `${label} ${method}`);
      t.regex(answer.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
  }

  // A third-party app's token (the user consented to openid email) cannot manage credentials.
  const partner = await startLogin(server, P.acme, { clientId: 'partner' });
  const request = await partner.passkeyOptions();
  const signedIn = await partner.passkeyVerify(
    ada.authenticator.authenticate(request.body as never, server.url),
  );
  t.like(signedIn.body, { step: 'consent' });
  const allowed = await partner.consent('allow');
  const { tokens } = await partner.finish(String(allowed.body.redirect_to));
  const thirdParty = await api(server, P.acme, tokens.access_token, 'GET', 'passkeys');
  t.like(thirdParty, { status: 403, body: { error: 'insufficient_scope' } });

  t.like(await api(server, 'nowhere', ada.token, 'GET', 'passkeys'), { status: 404 });
  t.is((await api(server, P.acme, ada.token, 'GET', 'passkeys')).status, 200, 'the real token still works');
});

test('malformed requests answer 4xx, never 5xx', async (t) => {
  const login = await serve(t, 'malformed');
  const { server, P } = login;
  const ada = await signedUp(login, t.context.fixture.mail, P.acme, `ada@${P.acme}.example`);
  const [passkey] = (await api(server, P.acme, ada.token, 'GET', 'passkeys')).body;
  const patch = (init: { json?: unknown; body?: string; headers?: Record<string, string> }) =>
    api(server, P.acme, ada.token, 'PATCH', `passkeys/${passkey.id}`, init);

  t.like(await patch({ body: '{"name":', headers: { 'content-type': 'application/json' } }), {
    status: 400,
    body: { error: 'invalid_request' },
  });
  t.like(await patch({ body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), {
    status: 415,
  });
  t.like(await patch({ json: { name: 'x'.repeat(70_000) } }), { status: 413 });
  t.like(await patch({ json: { name: 'ok', extra: true } }), { status: 400 });
  t.like(await patch({ json: [] }), { status: 400 });
  t.like(await patch({ json: null }), { status: 400 });
  t.like(await patch({}), { status: 400 }, 'a rename needs a name');
  t.like(
    await api(server, P.acme, ada.token, 'POST', 'passkeys/register/verify', { json: { response: {} } }),
    { status: 400, body: { error: 'passkey_rejected' } },
    'a malformed response is a refused ceremony (it spends the challenge)',
  );
  t.like(
    await api(server, P.acme, ada.token, 'POST', 'passkeys/register/verify', {
      json: {
        response: new SoftAuthenticator().register(
          {
            challenge: 'AAAA',
            rp: { id: 'localhost', name: 'x' },
            user: { id: 'AAAA', name: 'x', displayName: 'x' },
            pubKeyCredParams: [],
          },
          server.url,
        ),
      },
    }),
    { status: 400, body: { error: 'passkey_rejected' } },
    'no challenge was issued',
  );
  t.like(
    await api(server, P.acme, ada.token, 'PUT', 'password', { json: { password: 'long enough!' } }),
    {
      status: 400,
      body: { error: 'invalid_request' },
    },
    'this pool has no passwords',
  );
  t.like(
    await api(server, P.acme, ada.token, 'POST', 'recovery-codes'),
    {
      status: 400,
      body: { error: 'invalid_request' },
    },
    'this pool has no recovery codes',
  );
});

test('sets a password, and changing it needs the current one', async (t) => {
  const login = await serve(t, 'password');
  const { server, P } = login;
  const { mail } = t.context.fixture;
  const dan = await signedUp(login, mail, P.words, `dan@${P.acme}.example`);
  const { durable } = server.runtime;
  const put = (json: unknown) => api(server, P.words, dan.token, 'PUT', 'password', { json });

  t.like(await put({ password: 'short' }), { status: 400, body: { error: 'weak_password' } });
  t.like(await put({ password: ` ${dan.email.toUpperCase()}` }), {
    status: 400,
    body: { error: 'weak_password' },
  });
  t.is(await durable.users.getPasswordHash(P.words, dan.userId), undefined);

  t.like(await put({ password: 'first password here' }), {
    status: 200,
    body: { signed_out: { sessions: 0, apps: 0 } },
  });
  const first = await durable.users.getPasswordHash(P.words, dan.userId);
  t.truthy(first);

  t.like(await put({ password: 'second password here' }), {
    status: 400,
    body: { error: 'invalid_request' },
  });
  t.like(await put({ password: 'second password here', current_password: 'wrong password' }), {
    status: 400,
    body: { error: 'invalid_credentials' },
  });
  t.is(await durable.users.getPasswordHash(P.words, dan.userId), first, 'unchanged');

  t.is(
    (await put({ password: 'second password here', current_password: 'first password here' })).status,
    200,
  );
  t.not(await durable.users.getPasswordHash(P.words, dan.userId), first);

  // The new password signs in; the old one does not.
  const signIn = async (password: string) => {
    const client = await startLogin(server, P.words);
    await client.identify(dan.email);
    return client.post('/password', { password });
  };
  t.like(await signIn('first password here'), { status: 400, body: { error: 'invalid_credentials' } });
  t.truthy((await signIn('second password here')).body.redirect_to);

  const events = await durable.auditEvents.list(P.words, { userId: dan.userId, event: 'password_changed' });
  t.deepEqual(
    events.map((event) => [event.outcome, event.detail?.first_password ?? event.detail?.code]),
    [
      ['success', false],
      ['failure', 'wrong_current_password'],
      ['success', true],
    ],
  );
});

test('wrong current passwords pause changing the password; a right one starts the count again', async (t) => {
  const login = await serve(t, 'password-limit');
  const { server, P } = login;
  const { mail } = t.context.fixture;
  const fay = await signedUp(login, mail, P.words, `fay@${P.acme}.example`);
  const put = (json: unknown) => api(server, P.words, fay.token, 'PUT', 'password', { json });
  const change = (current: string) => put({ password: `${current} again`, current_password: current });
  t.is((await put({ password: 'first password here' })).status, 200);

  // Five tries per account and window, right ones included; a right one resets the count.
  for (let i = 0; i < 4; i++) t.like(await change('wrong password'), { status: 400 }, `wrong ${i + 1}`);
  t.is((await change('first password here')).status, 200);
  for (let i = 0; i < 5; i++)
    t.like(await change('wrong password'), { status: 400, body: { error: 'invalid_credentials' } });
  for (const current of ['first password here again', 'wrong password']) {
    const paused = await change(current);
    t.like(paused, { status: 429, body: { error: 'rate_limited' } }, current);
    t.regex(paused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  }

  const audited = await server.runtime.durable.auditEvents.list(P.words, {
    userId: fay.userId,
    event: 'rate_limited',
  });
  t.is(audited.length, 1, 'the moment the limit trips, once');
  t.like(audited[0], { outcome: 'failure', detail: { via: 'self_service', limit: 'self_service_password' } });
});

test('a first passkey brings recovery codes; new codes replace the old ones', async (t) => {
  const login = await serve(t, 'codes');
  const { server, P } = login;
  const { mail } = t.context.fixture;
  const email = `eve@${P.acme}.example`;

  // Sign up with an email code only (this pool allows it): no second factor yet.
  const signup = await startLogin(server, P.codes);
  await signup.identify(email);
  const proven = await signup.verifyCode(await mailedCode(signup, mail, email));
  t.like(proven.body, { step: 'enroll', reason: 'signup', optional: true });
  const skipped = await signup.skipEnroll();
  const { tokens, claims } = await signup.finish(String(skipped.body.redirect_to));
  const eve: SignedIn = {
    token: tokens.access_token,
    userId: claims.sub,
    email,
    authenticator: new SoftAuthenticator(),
  };

  const { verified } = await addPasskey(server, P.codes, eve);
  t.is(verified?.status, 201, JSON.stringify(verified?.body));
  const firstCodes = verified?.body.recovery_codes as string[];
  t.is(firstCodes.length, 10, 'the first second factor brings ten codes');
  const { verified: second } = await addPasskey(server, P.codes, eve);
  t.is(second?.body.recovery_codes, undefined, 'only the first');

  const replaced = await api(server, P.codes, eve.token, 'POST', 'recovery-codes');
  t.is(replaced.status, 200, JSON.stringify(replaced.body));
  const newCodes = replaced.body.recovery_codes as string[];
  t.is(newCodes.length, 10);
  t.true(newCodes.every((code) => /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/.test(code)));
  t.is(new Set([...firstCodes, ...newCodes]).size, 20);

  // As a second factor after an email code: the old set is void, the new one works.
  const recoverWith = async (code: string) => {
    const client = await startLogin(server, P.codes);
    await client.identify(email);
    const first = await client.verifyCode(await mailedCode(client, mail, email));
    t.like(first.body, { step: 'second_factor', methods: ['passkey', 'recovery_code'] });
    return client.post('/recovery-code', { code });
  };
  t.like(await recoverWith(firstCodes[0] ?? ''), { status: 400, body: { error: 'invalid_code' } });
  const recovered = await recoverWith(newCodes[0] ?? '');
  t.is(recovered.status, 200, JSON.stringify(recovered.body));
  t.is(recovered.body.recovery_codes_remaining, 9);

  const issued = await server.runtime.durable.auditEvents.list(P.codes, {
    userId: eve.userId,
    event: 'recovery_codes_issued',
  });
  t.deepEqual(
    issued.map((event) => event.detail?.replaced ?? false),
    [true, false],
  );
});

test('the account summary says who is signed in and what the pool lets them manage', async (t) => {
  const login = await serve(t, 'summary');
  const { server, P } = login;
  const summaryOf = async (poolId: string, token: string) => {
    const response = await fetch(`${server.url}/${poolId}/api/self`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    });
    return { status: response.status, body: await response.json() };
  };

  const ada = await signedUp(login, t.context.fixture.mail, P.acme, `ada@${P.acme}.example`);
  t.deepEqual(await summaryOf(P.acme, ada.token), {
    status: 200,
    body: {
      email: ada.email,
      passkeys: { enabled: true },
      password: { enabled: false, set: false, min_length: 10 },
      recovery_codes: { enabled: false, remaining: 0 },
      totp: { enabled: false, set: false },
      recent_auth: 300,
    },
  });

  const ben = await signedUp(login, t.context.fixture.mail, P.words, `ben@${P.words}.example`);
  t.like((await summaryOf(P.words, ben.token)).body, { password: { enabled: true, set: false } });
  t.is(
    (await api(server, P.words, ben.token, 'PUT', 'password', { json: { password: 'a long passphrase' } }))
      .status,
    200,
  );
  t.like((await summaryOf(P.words, ben.token)).body, { password: { enabled: true, set: true } });

  const email = `cy@${P.codes}.example`;
  const signup = await startLogin(server, P.codes);
  await signup.identify(email);
  await signup.verifyCode(await mailedCode(signup, t.context.fixture.mail, email));
  const skipped = await signup.skipEnroll();
  const { tokens } = await signup.finish(String(skipped.body.redirect_to));
  const cy = { ...ben, token: tokens.access_token, email, authenticator: new SoftAuthenticator() };
  t.like((await summaryOf(P.codes, cy.token)).body, { recovery_codes: { enabled: true, remaining: 0 } });
  await addPasskey(server, P.codes, cy);
  t.like((await summaryOf(P.codes, cy.token)).body, { recovery_codes: { enabled: true, remaining: 10 } });

  t.is((await summaryOf(P.acme, 'not-a-token')).status, 401);
  t.is((await summaryOf(P.words, ada.token)).status, 401, 'a token of another pool');
});

test('the account page is served per pool, with its own client', async (t) => {
  const { server, P } = await serve(t, 'page');
  const page = await fetch(`${server.url}/${P.acme}/account`);
  t.is(page.status, 200);
  t.is(page.headers.get('cache-control'), 'no-store');
  const html = await page.text();
  t.regex(html, new RegExp(`data-issuer="${server.url}/${P.acme}"`));
  t.regex(html, /data-client-id="postern-account"/);
  t.is((await fetch(`${server.url}/no-such-pool/account`)).status, 404);

  // The page's client exists in the pool: an authorization request for it reaches the sign-in page.
  const authorize = new URL(`${server.url}/${P.acme}/auth`);
  authorize.search = new URLSearchParams({
    client_id: 'postern-account',
    response_type: 'code',
    redirect_uri: `${server.url}/${P.acme}/account`,
    scope: 'openid email',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  }).toString();
  const answer = await fetch(authorize, { redirect: 'manual' });
  t.is(answer.status, 303);
  t.regex(answer.headers.get('location') ?? '', new RegExp(`^/${P.acme}/interaction/`));
});

// ------------------------------------------------------- signing out elsewhere

/**
 * The user signs up in one browser (`current`: the one that will make the
 * change) and signs in with the same passkey in another (`other`: a thief's,
 * or an old laptop). Both hold a session, an access token and a refresh token.
 */
async function signedInTwice(login: LoginServer, mail: LoginFixture['mail'], poolId: string, email: string) {
  const { server } = login;
  const authenticator = new SoftAuthenticator();
  const first = new Browserless();
  const signup = await startOffline(server, poolId, first);
  await signup.identify(email);
  await signup.verifyCode(await mailedCode(signup, mail, email));
  const options = await signup.registerOptions();
  const registered = await signup.registerVerify(authenticator.register(options.body as never, server.url));
  if (!registered.body.redirect_to) throw new Error(`sign-up: ${JSON.stringify(registered.body)}`);
  const current = await tokensOf(signup, registered.body.redirect_to, first);

  const second = new Browserless();
  const again = await startOffline(server, poolId, second);
  const request = await again.passkeyOptions();
  const signedIn = await again.passkeyVerify(authenticator.authenticate(request.body as never, server.url));
  if (!signedIn.body.redirect_to) throw new Error(`sign-in: ${JSON.stringify(signedIn.body)}`);
  const other = await tokensOf(again, signedIn.body.redirect_to, second);
  const user: SignedIn = { token: current.access, userId: '', email, authenticator };
  return { current, other, user };
}

test('removing a passkey signs the other browser out (session, access and refresh token) and keeps this one', async (t) => {
  const login = await serve(t, 'out-passkey');
  const { server, P } = login;
  const { current, other, user } = await signedInTwice(
    login,
    t.context.fixture.mail,
    P.acme,
    `ada@${P.acme}.example`,
  );
  t.deepEqual(await whatStillWorks(server, P.acme, other), SIGNED_IN, 'the other browser works before');
  const { verified } = await addPasskey(server, P.acme, user, 'Spare');
  t.is(verified?.status, 201, JSON.stringify(verified?.body));
  t.deepEqual(await whatStillWorks(server, P.acme, other), SIGNED_IN, 'adding a passkey signs nobody out');

  const [stolen] = (await api(server, P.acme, current.access, 'GET', 'passkeys')).body;
  const removed = await api(server, P.acme, current.access, 'DELETE', `passkeys/${stolen.id}`);
  t.is(removed.status, 200, JSON.stringify(removed.body));
  t.deepEqual(removed.body, { signed_out: { sessions: 1, apps: 1 } });

  t.deepEqual(await whatStillWorks(server, P.acme, other), SIGNED_OUT);
  t.deepEqual(await whatStillWorks(server, P.acme, current), SIGNED_IN, 'this browser stays signed in');
  t.is((await api(server, P.acme, current.access, 'GET', 'passkeys')).status, 200);

  const [event] = await server.runtime.durable.auditEvents.list(P.acme, { event: 'signed_out_elsewhere' });
  t.like(event, { outcome: 'success', userAgent: 'self-service-test' });
  t.like(event?.detail, { reason: 'passkey_removed', sessions: 1, grants: 1, apps: 1, via: 'self_service' });
});

test('changing the password signs the other browser out; setting the first one does not', async (t) => {
  const login = await serve(t, 'out-password');
  const { server, P } = login;
  const { current, other } = await signedInTwice(
    login,
    t.context.fixture.mail,
    P.words,
    `dan@${P.words}.example`,
  );
  const put = (json: unknown) => api(server, P.words, current.access, 'PUT', 'password', { json });

  t.like(await put({ password: 'first password here' }), {
    status: 200,
    body: { signed_out: { sessions: 0, apps: 0 } },
  });
  t.deepEqual(await whatStillWorks(server, P.words, other), SIGNED_IN, 'a first password adds a way in');

  const wrong = await put({ password: 'second password here', current_password: 'not it at all' });
  t.like(wrong, { status: 400, body: { error: 'invalid_credentials' } });
  t.deepEqual(await whatStillWorks(server, P.words, other), SIGNED_IN, 'a refused change signs nobody out');

  const changed = await put({ password: 'second password here', current_password: 'first password here' });
  t.is(changed.status, 200, JSON.stringify(changed.body));
  t.deepEqual(changed.body, { signed_out: { sessions: 1, apps: 1 } });
  t.deepEqual(await whatStillWorks(server, P.words, other), SIGNED_OUT);
  t.deepEqual(await whatStillWorks(server, P.words, current), SIGNED_IN);
  const [event] = await server.runtime.durable.auditEvents.list(P.words, { event: 'signed_out_elsewhere' });
  t.like(event?.detail, { reason: 'password_changed', sessions: 1, grants: 1 });
});

test('new recovery codes sign every other browser and app out, this browser’s apps included', async (t) => {
  const login = await serve(t, 'out-codes');
  const { server, P } = login;
  const { mail } = t.context.fixture;
  const email = `eve@${P.codes}.example`;
  const { current, other, user } = await signedInTwice(login, mail, P.codes, email);

  // A third browser, and a third-party app this one consented to in the other browser.
  const { other: third } = await signedInTwice(login, mail, P.codes, `someone-else@${P.codes}.example`);
  const partner = await startLogin(server, P.codes, { clientId: 'partner', browser: other.browser });
  const allowed = await partner.consent('allow');
  await partner.finish(String(allowed.body.redirect_to));
  const laptop = new Browserless();
  const old = await startOffline(server, P.codes, laptop);
  await old.identify(email);
  const first = await old.verifyCode(await mailedCode(old, mail, email));
  t.like(first.body, { step: 'second_factor' });
  const options = await old.passkeyOptions();
  const signedIn = await old.passkeyVerify(
    user.authenticator.authenticate(options.body as never, server.url),
  );
  const oldLaptop = await tokensOf(old, signedIn.body.redirect_to, laptop);

  const replaced = await api(server, P.codes, current.access, 'POST', 'recovery-codes');
  t.is(replaced.status, 200, JSON.stringify(replaced.body));
  t.is(replaced.body.recovery_codes.length, 10);
  t.deepEqual(replaced.body.signed_out, { sessions: 2, apps: 2 }, 'web in two browsers, partner in one');

  t.deepEqual(await whatStillWorks(server, P.codes, other), SIGNED_OUT);
  t.deepEqual(await whatStillWorks(server, P.codes, oldLaptop), SIGNED_OUT);
  t.deepEqual(await whatStillWorks(server, P.codes, current), SIGNED_IN);
  t.deepEqual(await whatStillWorks(server, P.codes, third), SIGNED_IN, 'another user is not touched');
  const [event] = await server.runtime.durable.auditEvents.list(P.codes, { event: 'signed_out_elsewhere' });
  t.like(event?.detail, { reason: 'recovery_codes_replaced', sessions: 2, grants: 3, apps: 2 });
});
