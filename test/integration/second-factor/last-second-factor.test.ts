/**
 * The last second factor (issue 8, item 3), through the self-service API
 * against real PostgreSQL and Redis: where a second factor is required (the
 * pool's `second_factor_required: always`, or an organization of the user's
 * with `require_mfa`), the user may remove a passkey or their authenticator
 * app only while the other still stands in for it; a passkey removal and an
 * app removal sent at once cannot both pass.
 */
import type { ExecutionContext } from 'ava';
import { totpCodeAt } from '../../../src/factors/totp/totp-codes.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  type LoginFixture,
  loginTests,
  mailedCode,
  REDIRECT,
  signUp,
  startLogin,
} from '../login/login-fixture.ts';

const test = await loginTests();
type Context = ExecutionContext<{ fixture: LoginFixture }>;

const pool = (required: 'always' | 'when_enrolled') => `
display_name: Acme
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [email_otp, passkey]
  second_factor: [passkey, recovery_code, totp]
  second_factor_required: ${required}
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

async function self(server: TestServer, token: string, method: string, path: string, json?: unknown) {
  const response = await fetch(`${server.url}/acme/api/self/${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any };
}

/** Signs `email` up with a passkey (email code first); the user's id and access token. */
async function withPasskey(t: Context, server: TestServer, email: string) {
  const { login, answer } = await signUp(
    server,
    t.context.fixture.mail,
    'acme',
    email,
    new SoftAuthenticator(),
  );
  const { tokens } = await login.finish(String(answer.body.redirect_to));
  const user = await server.runtime.durable.users.findByEmail('acme', email);
  return { userId: user?.id ?? '', token: tokens.access_token };
}

/** Signs `email` up by email code alone, declining the passkey (a `when_enrolled` pool). */
async function withoutPasskey(t: Context, server: TestServer, email: string) {
  const login = await startLogin(server, 'acme');
  await login.identify(email);
  const proven = await login.verifyCode(await mailedCode(login, t.context.fixture.mail, email));
  t.like(proven.body, { step: 'enroll', optional: true });
  const skipped = await login.skipEnroll();
  const { tokens } = await login.finish(String(skipped.body.redirect_to));
  const user = await server.runtime.durable.users.findByEmail('acme', email);
  return { userId: user?.id ?? '', token: tokens.access_token };
}

/** Enrols an authenticator app on the token's account. */
async function addTotp(t: Context, server: TestServer, token: string) {
  const setup = await self(server, token, 'POST', 'totp/setup', {});
  t.is(setup.status, 200, JSON.stringify(setup.body));
  const confirmed = await self(server, token, 'POST', 'totp/confirm', {
    code: totpCodeAt(setup.body.secret, Date.now()),
  });
  t.is(confirmed.status, 201, JSON.stringify(confirmed.body));
}

/** Adds a passkey through the account page's API. */
async function addPasskey(t: Context, server: TestServer, token: string) {
  const options = await self(server, token, 'POST', 'passkeys/register/options', {});
  const added = await self(server, token, 'POST', 'passkeys/register/verify', {
    response: new SoftAuthenticator().register(options.body, server.url),
  });
  t.is(added.status, 201, JSON.stringify(added.body));
}

const passkeysOf = async (server: TestServer, token: string) =>
  (await self(server, token, 'GET', 'passkeys')).body as Array<{ id: string }>;

const totpSet = async (server: TestServer, token: string) =>
  (await self(server, token, 'GET', '')).body.totp.set as boolean;

test('always: the last passkey may go while an authenticator app stays, and then the app may not', async (t) => {
  const { server } = await t.context.fixture.start(t, { acme: pool('always') });
  const { userId, token } = await withPasskey(t, server, 'ada@acme.example');
  await addTotp(t, server, token);

  const [passkey] = await passkeysOf(server, token);
  const removed = await self(server, token, 'DELETE', `passkeys/${passkey?.id}`);
  t.is(removed.status, 200, 'the app is a second factor: the passkey may go');
  t.like(removed.body, { signed_out: { sessions: 0 } });
  t.deepEqual(await passkeysOf(server, token), []);

  const refused = await self(server, token, 'DELETE', 'totp');
  t.is(refused.status, 409, JSON.stringify(refused.body));
  t.is(refused.body.error, 'last_second_factor');
  t.true(await totpSet(server, token), 'the app is still enrolled');
  const [event] = await server.runtime.durable.auditEvents.list('acme', { userId, event: 'totp_removed' });
  t.like(event, { outcome: 'failure', detail: { code: 'last_second_factor' } });

  // With a passkey again, the app may go.
  await addPasskey(t, server, token);
  t.is((await self(server, token, 'DELETE', 'totp')).status, 200);
  t.false(await totpSet(server, token));
});

test('an organization that requires MFA keeps its members’ last second factor; others may remove theirs', async (t) => {
  const { server } = await t.context.fixture.start(t, { acme: pool('when_enrolled') });
  const { organizations } = server.runtime.durable;
  const strict = await organizations.create({
    poolId: 'acme',
    slug: 'strict',
    name: 'Strict',
    requireMfa: true,
  });
  const noPasskeys = await organizations.create({
    poolId: 'acme',
    slug: 'no-passkeys',
    name: 'No passkeys',
    requireMfa: true,
    passkeyLogin: false,
  });

  // A member's only passkey stays; an outsider's goes (email codes still let them in).
  const member = await withPasskey(t, server, 'mia@acme.example');
  await organizations.addMember('acme', strict.id, member.userId);
  const [memberKey] = await passkeysOf(server, member.token);
  const kept = await self(server, member.token, 'DELETE', `passkeys/${memberKey?.id}`);
  t.like(kept, { status: 409, body: { error: 'last_second_factor' } });
  t.is((await passkeysOf(server, member.token)).length, 1);
  const outsider = await withPasskey(t, server, 'otto@acme.example');
  const [outsiderKey] = await passkeysOf(server, outsider.token);
  t.is((await self(server, outsider.token, 'DELETE', `passkeys/${outsiderKey?.id}`)).status, 200);

  // The same for an authenticator app as the only second factor.
  const appMember = await withoutPasskey(t, server, 'ama@acme.example');
  await organizations.addMember('acme', strict.id, appMember.userId);
  await addTotp(t, server, appMember.token);
  t.like(await self(server, appMember.token, 'DELETE', 'totp'), {
    status: 409,
    body: { error: 'last_second_factor' },
  });
  t.true(await totpSet(server, appMember.token));
  const appOutsider = await withoutPasskey(t, server, 'oona@acme.example');
  await addTotp(t, server, appOutsider.token);
  t.is((await self(server, appOutsider.token, 'DELETE', 'totp')).status, 200);

  // A passkey is no second factor in an organization with passkey login off: the app stays.
  const both = await withPasskey(t, server, 'bea@acme.example');
  await addTotp(t, server, both.token);
  await organizations.addMember('acme', noPasskeys.id, both.userId);
  t.like(await self(server, both.token, 'DELETE', 'totp'), {
    status: 409,
    body: { error: 'last_second_factor' },
  });
  t.true(await totpSet(server, both.token));
});

test('always: a passkey removal and an app removal sent at once leave a second factor', async (t) => {
  const { server } = await t.context.fixture.start(t, { acme: pool('always') });
  const { userId, token } = await withPasskey(t, server, 'cy@acme.example');
  await addTotp(t, server, token);
  // Several rounds: each time one of the two goes, it comes back for the next.
  for (let round = 0; round < 5; round++) {
    const [passkey] = await passkeysOf(server, token);
    const [passkeyRemoval, appRemoval] = await Promise.all([
      self(server, token, 'DELETE', `passkeys/${passkey?.id}`),
      self(server, token, 'DELETE', 'totp'),
    ]);
    const statuses = [passkeyRemoval.status, appRemoval.status];
    t.deepEqual([...statuses].sort(), [200, 409], JSON.stringify([passkeyRemoval.body, appRemoval.body]));
    const account = await server.runtime.durable.users.findAccount('acme', userId);
    t.is((account?.passkeys ?? 0) + (account?.hasTotp ? 1 : 0), 1, 'exactly one second factor left');
    if (passkeyRemoval.status === 200) await addPasskey(t, server, token);
    else await addTotp(t, server, token);
  }
});
