/**
 * Passkey registration through the self-service API
 * (`/{pool}/api/self/passkeys/register/*`) runs the interaction API's
 * ceremony checks: the challenge is taken before anything else, so a
 * malformed or wrong-type response, or a verification refused for a stale
 * authentication, spends it; an unsound credential public key is refused.
 * Each refusal answers 400 `passkey_rejected` (or 401 `login_required`),
 * stores nothing and audits the refusal's code (src/factors/refusal-codes.ts).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import type { RefusalCode } from '../../../src/factors/refusal-codes.ts';
import { storedIdOf } from '../../../src/oidc/adapter.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { probePostgres, probeRedis, serviceTest } from '../../support/services.ts';
import { type RegistrationOverrides, SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { type LoginFixture, openLoginFixture, poolFile, signUp } from '../login/login-fixture.ts';

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

/** A signed-up user of a fresh server, with the access token the web client got. */
async function signedUpUser(t: ExecutionContext<Context>, poolId: string) {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { [poolId]: poolFile() });
  const email = `ada@${poolId}.example`;
  const authenticator = new SoftAuthenticator();
  const { login, answer } = await signUp(server, fixture.mail, poolId, email, authenticator);
  const { tokens, claims } = await login.finish(String(answer.body.redirect_to));
  return { server, token: tokens.access_token, userId: claims.sub, authenticator };
}

/** Calls the self-service API with `token`. */
async function api(server: TestServer, poolId: string, token: string, path: string, json: unknown) {
  const response = await fetch(`${server.url}/${poolId}/api/self/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(json),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as any };
}

/** The codes of the user's refused registrations, oldest first. */
async function refusals(server: TestServer, poolId: string, userId: string) {
  const events = await server.runtime.durable.auditEvents.list(poolId, {
    userId,
    event: 'passkey_registration',
    limit: 100,
  });
  return events
    .filter((event) => event.outcome === 'failure')
    .map((event) => event.detail?.code)
    .reverse();
}

const MALFORMED: Array<[string, (honest: Record<string, unknown>) => unknown]> = [
  ['of a wrong type', (honest) => ({ ...honest, type: 'password' })],
  ['that is an empty object', () => ({})],
  ['that is missing', () => undefined],
];

test('a malformed or wrong-type registration is refused and spends the challenge', async (t) => {
  const poolId = 'malformed';
  const { server, token, userId, authenticator } = await signedUpUser(t, poolId);
  for (const [label, malform] of MALFORMED) {
    const options = (await api(server, poolId, token, 'passkeys/register/options', {})).body;
    const honest = () => authenticator.register(options, server.url) as unknown as Record<string, unknown>;
    const bent = malform(honest());
    const refused = await api(
      server,
      poolId,
      token,
      'passkeys/register/verify',
      bent === undefined ? {} : { response: bent },
    );
    t.like(refused, { status: 400, body: { error: 'passkey_rejected' } }, label);
    const retried = await api(server, poolId, token, 'passkeys/register/verify', { response: honest() });
    t.like(retried, { status: 400, body: { error: 'passkey_rejected' } }, `${label}: the challenge is spent`);
    t.deepEqual(
      (await refusals(server, poolId, userId)).slice(-2),
      ['malformed_response', 'challenge_missing'],
      label,
    );
  }
  t.is(await server.runtime.durable.passkeys.countByUser(poolId, userId), 1, 'no passkey was added');
});

/**
 * Bodies the route guard refuses around an honest response, as raw JSON text:
 * 400 invalid_request, after the challenge is taken (issue 8, item 8).
 */
const MALFORMED_BODIES: Array<[string, (response: unknown) => string]> = [
  ['with a member it does not take', (response) => JSON.stringify({ response, extra: 1 })],
  ['with a name that is a number', (response) => JSON.stringify({ response, name: 5 })],
  [
    'with a lone surrogate beside the response',
    (response) => `{"response":${JSON.stringify(response)},"name":"\\ud800"}`,
  ],
];

test('a registration in a malformed body is refused and spends the challenge', async (t) => {
  const poolId = 'malformed-body';
  const { server, token, userId, authenticator } = await signedUpUser(t, poolId);
  for (const [label, bodyOf] of MALFORMED_BODIES) {
    const options = (await api(server, poolId, token, 'passkeys/register/options', {})).body;
    const response = await fetch(`${server.url}/${poolId}/api/self/passkeys/register/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: bodyOf(authenticator.register(options, server.url)),
    });
    t.is(response.status, 400, label);
    t.like(await response.json(), { error: 'invalid_request' }, label);
    const retried = await api(server, poolId, token, 'passkeys/register/verify', {
      response: authenticator.register(options, server.url),
    });
    t.like(retried, { status: 400, body: { error: 'passkey_rejected' } }, `${label}: the challenge is spent`);
    t.is((await refusals(server, poolId, userId)).at(-1), 'challenge_missing', label);
  }
  t.is(await server.runtime.durable.passkeys.countByUser(poolId, userId), 1, 'no passkey was added');
});

test('a verification refused for a stale authentication spends the challenge too', async (t) => {
  const poolId = 'stale';
  const { server, token, userId, authenticator } = await signedUpUser(t, poolId);
  const options = (await api(server, poolId, token, 'passkeys/register/options', {})).body;

  // A copy of the token whose authentication is older than the pool's recent_auth window.
  const store = server.runtime.ephemeral.oidcModels(poolId);
  const payload = await store.find('AccessToken', storedIdOf('AccessToken', token));
  if (!payload) throw new Error('the access token is not stored');
  const staleToken = `stale-${token}`;
  await store.upsert(
    'AccessToken',
    storedIdOf('AccessToken', staleToken),
    { ...payload, extra: { auth_time: Math.floor(Date.now() / 1000) - 3600 } },
    600,
  );
  const stale = await api(server, poolId, staleToken, 'passkeys/register/verify', {
    response: authenticator.register(options, server.url),
  });
  t.like(stale, { status: 401, body: { error: 'login_required' } });

  const honest = await api(server, poolId, token, 'passkeys/register/verify', {
    response: authenticator.register(options, server.url),
  });
  t.like(
    honest,
    { status: 400, body: { error: 'passkey_rejected' } },
    'the stale attempt spent the challenge',
  );
  t.is((await refusals(server, poolId, userId)).at(-1), 'challenge_missing');
  t.is(await server.runtime.durable.passkeys.countByUser(poolId, userId), 1);
});

test('refuses an unsound credential public key, and stores nothing', async (t) => {
  const poolId = 'unsound';
  const { server, token, userId, authenticator } = await signedUpUser(t, poolId);
  const cases: Array<[RegistrationOverrides, RefusalCode]> = [
    [{ algorithm: 'RS256', rsaModulusBits: 1024 }, 'weak_public_key'],
    [{ coseKey: (key) => key.set(1, 1) }, 'malformed_public_key'],
  ];
  for (const [overrides, code] of cases) {
    const options = (await api(server, poolId, token, 'passkeys/register/options', {})).body;
    const refused = await api(server, poolId, token, 'passkeys/register/verify', {
      response: authenticator.register(options, server.url, overrides),
    });
    t.like(refused, { status: 400, body: { error: 'passkey_rejected' } });
    t.is((await refusals(server, poolId, userId)).at(-1), code);
  }
  t.is(await server.runtime.durable.passkeys.countByUser(poolId, userId), 1, 'no passkey was added');
});
