/**
 * An authenticator app (TOTP, RFC 6238) as a second factor, against real
 * PostgreSQL and Redis: enrolled through the self-service API (setup, then a
 * code to confirm), asked for at the second step of a sign-in, each code
 * accepted once, wrong codes limited, and superseded by a passkey once the
 * user has one (passkey_supersedes_totp, the default).
 */
import type { ExecutionContext } from 'ava';
import { totpCodeAt } from '../../../src/factors/totp/totp-codes.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { type LoginFixture, loginTests, mailedCode, REDIRECT, startLogin } from '../login/login-fixture.ts';

const test = await loginTests();

const POOL = `
display_name: Acme
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [email_otp, passkey]
  second_factor: [passkey, recovery_code, totp]
  second_factor_required: when_enrolled
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

/** Signs `email` in (or up) by email code, skipping the passkey offer, up to `second` when a second step is asked. */
async function byEmailCode(server: TestServer, mail: LoginFixture['mail'], poolId: string, email: string) {
  const login = await startLogin(server, poolId);
  await login.identify(email);
  let answer = await login.verifyCode(await mailedCode(login, mail, email));
  if (answer.body.step === 'enroll') answer = await login.skipEnroll();
  return { login, answer };
}

async function self(
  server: TestServer,
  poolId: string,
  token: string,
  method: string,
  path: string,
  json?: unknown,
) {
  const response = await fetch(`${server.url}/${poolId}/api/self/${path}`, {
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

/** A user signed up by email code who enrolled an authenticator app; its secret. */
async function withTotp(t: ExecutionContext<{ fixture: LoginFixture }>, server: TestServer, email: string) {
  const { mail } = t.context.fixture;
  const { login, answer } = await byEmailCode(server, mail, 'acme', email);
  const { tokens } = await login.finish(String(answer.body.redirect_to));
  const token = tokens.access_token;

  const setup = await self(server, 'acme', token, 'POST', 'totp/setup', {});
  t.is(setup.status, 200, JSON.stringify(setup.body));
  t.regex(setup.body.otpauth_uri, /^otpauth:\/\/totp\/Acme:.+\?.*secret=/);
  t.regex(setup.body.qr_svg, /^<svg/);
  const { secret } = setup.body as { secret: string };
  t.is((await self(server, 'acme', token, 'POST', 'totp/confirm', { code: '000000' })).status, 400);
  const confirmed = await self(server, 'acme', token, 'POST', 'totp/confirm', {
    code: totpCodeAt(secret, Date.now()),
  });
  t.is(confirmed.status, 201, JSON.stringify(confirmed.body));
  t.like((await self(server, 'acme', token, 'GET', '')).body, { totp: { enabled: true, set: true } });
  return { secret, token };
}

test('an authenticator app enrolled on the account is asked for at the second step; each code works once', async (t) => {
  const { server } = await t.context.fixture.start(t, { acme: POOL });
  const { mail } = t.context.fixture;
  const email = 'ada@acme.example';
  const { secret } = await withTotp(t, server, email);
  const user = await server.runtime.durable.users.findByEmail('acme', email);
  const stored = await server.runtime.durable.totp.find('acme', user!.id);
  t.false(stored?.sealedSecret.includes(secret), 'the secret is sealed at rest');

  const { login, answer } = await byEmailCode(server, mail, 'acme', email);
  t.like(answer.body, { step: 'second_factor', methods: ['totp'] });
  // The code that confirmed the enrolment is spent; the next step's code is within the window.
  const next = totpCodeAt(secret, Date.now() + 30_000);
  const wrong = await login.post('/totp', { code: next === '123456' ? '654321' : '123456' });
  t.is(wrong.status, 400);
  t.is(wrong.body.error, 'invalid_code');
  const signedIn = await login.post('/totp', { code: next });
  t.truthy(signedIn.body.redirect_to, JSON.stringify(signedIn.body));
  const { claims } = await login.finish(String(signedIn.body.redirect_to));
  t.deepEqual([...(claims.amr as string[])].sort(), ['mfa', 'otp']);

  const again = await byEmailCode(server, mail, 'acme', email);
  const replay = await again.login.post('/totp', { code: next });
  t.is(replay.status, 400, 'a code is accepted once');
  t.is(replay.body.error_description, 'That code was already used. Wait for the next one.');

  const events = await server.runtime.durable.auditEvents.list('acme', {
    userId: user!.id,
    event: 'sign_in',
  });
  t.true(events.some((event) => event.outcome === 'failure' && event.detail?.code === 'totp_replayed'));
});

test('wrong codes are limited per account, and a passkey supersedes the authenticator app', async (t) => {
  const { server } = await t.context.fixture.start(t, { acme: POOL });
  const { mail } = t.context.fixture;
  const email = 'bo@acme.example';
  const { secret, token } = await withTotp(t, server, email);

  const { login } = await byEmailCode(server, mail, 'acme', email);
  const right = totpCodeAt(secret, Date.now() + 30_000);
  const wrong = right === '000000' ? '111111' : '000000';
  // The right code at enrolment reset the count: ten wrong ones here use it up.
  for (let i = 0; i < 10; i++) t.is((await login.post('/totp', { code: wrong })).status, 400);
  const locked = await login.post('/totp', { code: right });
  t.is(locked.status, 429, 'after ten wrong codes even the right one waits');

  // A passkey added on the account page: from then on it is asked for, not the app.
  const authenticator = new SoftAuthenticator();
  const options = await self(server, 'acme', token, 'POST', 'passkeys/register/options', {});
  const added = await self(server, 'acme', token, 'POST', 'passkeys/register/verify', {
    response: authenticator.register(options.body, server.url),
  });
  t.is(added.status, 201, JSON.stringify(added.body));
  const after = await byEmailCode(server, mail, 'acme', email);
  t.like(after.answer.body, { step: 'second_factor' });
  const methods = after.answer.body.methods as string[];
  t.false(methods.includes('totp'));
  t.true(methods.includes('passkey'));
  t.is((await after.login.post('/totp', { code: totpCodeAt(secret, Date.now() + 60_000) })).status, 400);

  const removed = await self(server, 'acme', token, 'DELETE', 'totp');
  t.is(removed.status, 200, JSON.stringify(removed.body));
  t.like(removed.body, { signed_out: { sessions: 0 } });
  t.is((await self(server, 'acme', token, 'DELETE', 'totp')).status, 404);
});
