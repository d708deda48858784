/**
 * Step-up: a request that demands phr or phrh (acr_values, an essential acr
 * claim, the client's default_acr_values), or a fresh login (max_age,
 * prompt=login), is only answered after a login that meets it.
 */
import type { ExecutionContext } from 'ava';
import * as client from 'openid-client';
import { Browserless } from '../../support/browserless.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { type LoginFixture, type LoginServer, loginTests, REDIRECT } from '../login/login-fixture.ts';

const test = await loginTests();

const pool = `
passkeys:
  mode: smart
  rp: { id: localhost, origins: ["\${PUBLIC_URL}"] }
authentication:
  first_factor: [passkey, email_otp]
clients:
  - { client_id: web, token_endpoint_auth_method: none, redirect_uris: ["${REDIRECT}"], scope: openid email, first_party: true }
  - client_id: bank
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
    default_acr_values: [phrh]
`;

type Context = ExecutionContext<{ fixture: LoginFixture }>;

/** A user with a passkey, signed in by email code in `browser` (a session at acr 0). */
async function emailSession(t: Context, login: LoginServer, email: string, authenticator: SoftAuthenticator) {
  const browser = new Browserless();
  const signUp = await InteractionClient.start(login.server, {
    poolId: 'acme',
    clientId: 'web',
    redirectUri: REDIRECT,
    browser,
  });
  await signUp.identify(email);
  await signUp.sendCode();
  await signUp.verifyCode(await t.context.fixture.mail.nextCode(email));
  const options = await signUp.registerOptions();
  const registered = await signUp.registerVerify(
    authenticator.register(options.body as never, login.server.url),
  );
  const { claims } = await signUp.finish(String(registered.body.redirect_to));
  t.is(claims.acr, '0');
  return { browser, sub: claims.sub };
}

/** An authorization request with prompt=none: the redirect back to the app, without an interaction. */
async function silently(login: LoginServer, browser: Browserless, params: Record<string, string>) {
  const url = new URL(`${login.server.issuer('acme')}/auth`);
  const verifier = client.randomPKCECodeVerifier();
  for (const [key, value] of Object.entries({
    client_id: 'web',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid',
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...params,
  })) {
    url.searchParams.set(key, value);
  }
  const response = await browser.follow(url, { origin: new URL(login.server.url).origin });
  return new URL(response.headers.get('location') ?? '');
}

test('acr_values=phr on an email-code session: prompt=none gets login_required, a login needs a passkey and says phr', async (t) => {
  const login = await t.context.fixture.start(t, { acme: pool });
  const authenticator = new SoftAuthenticator();
  const { browser, sub } = await emailSession(t, login, 'ada@acme.example', authenticator);

  const refused = await silently(login, browser, { acr_values: 'phr' });
  t.is(refused.searchParams.get('error'), 'login_required', 'never a weaker token');
  t.is(refused.searchParams.get('code'), null);

  const before = Math.floor(Date.now() / 1000);
  const stepUp = await InteractionClient.start(login.server, {
    poolId: 'acme',
    clientId: 'web',
    redirectUri: REDIRECT,
    browser,
    params: { acr_values: 'phr' },
  });
  const state = await stepUp.state();
  t.deepEqual(state.body.methods, ['passkey'], 'only a passkey can meet phr');
  const code = await stepUp.sendCode('ada@acme.example');
  t.like(code.body, { methods: ['passkey'] });
  const options = await stepUp.passkeyOptions();
  const verified = await stepUp.passkeyVerify(
    authenticator.authenticate(options.body as never, login.server.url),
  );
  const { claims } = await stepUp.finish(String(verified.body.redirect_to));
  t.is(claims.sub, sub);
  t.is(claims.acr, 'phr', 'a device-bound passkey asked for phr says phr (OIDC Core §5.5.1.1)');
  t.true((claims.auth_time ?? 0) >= before, 'a fresh auth_time');

  const now = await silently(login, browser, { acr_values: 'phr' });
  t.truthy(now.searchParams.get('code'), 'the stepped-up session now meets phr without a prompt');
});

test('an email code cannot meet a demand for phr, and the step-up takes only that user’s passkey', async (t) => {
  const login = await t.context.fixture.start(t, { acme: pool });
  const ben = new SoftAuthenticator();
  const { sub } = await emailSession(t, login, 'ben@acme.example', ben);
  const mallory = new SoftAuthenticator();
  await emailSession(t, login, 'mallory@acme.example', mallory);
  const fresh = await InteractionClient.start(login.server, {
    poolId: 'acme',
    clientId: 'web',
    redirectUri: REDIRECT,
    params: { acr_values: 'phr' },
  });
  await fresh.identify('ben@acme.example');
  await fresh.sendCode();
  const verified = await fresh.verifyCode(await t.context.fixture.mail.nextCode('ben@acme.example'));
  t.like(verified.body, { step: 'first_factor', methods: ['passkey'], reason: 'step_up' });
  t.is(verified.body.redirect_to, undefined);

  const options = await fresh.passkeyOptions();
  t.deepEqual(
    (options.body.allowCredentials as Array<{ id: string }>).map((credential) => credential.id),
    ben.credentials.map((credential) => credential.id.toString('base64url')),
    'the step-up asks for the signed-in user’s passkeys',
  );
  const foreign = await fresh.passkeyVerify(
    mallory.authenticate(options.body as never, login.server.url, {
      credentialId: mallory.credentials[0]?.id.toString('base64url'),
    }),
  );
  t.like(foreign, { status: 400, body: { error: 'passkey_rejected' } });
  const again = await fresh.passkeyOptions();
  const own = await fresh.passkeyVerify(ben.authenticate(again.body as never, login.server.url));
  const { claims } = await fresh.finish(String(own.body.redirect_to));
  t.is(claims.sub, sub);
  t.is(claims.acr, 'phr');
});

test('phrh refuses a synced passkey; the client default and an essential acr claim demand it too', async (t) => {
  const login = await t.context.fixture.start(t, { acme: pool });
  const synced = new SoftAuthenticator({ synced: true });
  await emailSession(t, login, 'cy@acme.example', synced);

  for (const params of [
    { acr_values: 'phrh' },
    { claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'phrh' } } }) },
  ] as Array<Record<string, string>>) {
    const stepUp = await InteractionClient.start(login.server, {
      poolId: 'acme',
      clientId: 'web',
      redirectUri: REDIRECT,
      params,
    });
    const options = await stepUp.passkeyOptions();
    const refused = await stepUp.passkeyVerify(synced.authenticate(options.body as never, login.server.url));
    t.like(refused, { status: 400, body: { error: 'acr_not_met' } }, JSON.stringify(params));
  }
  const bank = await InteractionClient.start(login.server, {
    poolId: 'acme',
    clientId: 'bank',
    redirectUri: REDIRECT,
  });
  t.deepEqual((await bank.state()).body.methods, ['passkey'], 'default_acr_values: [phrh]');
  const options = await bank.passkeyOptions();
  const refused = await bank.passkeyVerify(synced.authenticate(options.body as never, login.server.url));
  t.like(refused, { status: 400, body: { error: 'acr_not_met' } });
  // Every refusal is audited with its code (checked by content, not by which row is newest).
  const refusals = (await login.server.runtime.durable.auditEvents.list('acme', { event: 'sign_in' })).filter(
    (event) => event.outcome === 'failure',
  );
  t.is(refusals.length, 3, JSON.stringify(refusals));
  for (const event of refusals) t.is(event.detail?.code, 'acr_not_met');
});

test('a phr demand is met by a synced passkey, and an essential acr of phr by a device-bound one', async (t) => {
  const login = await t.context.fixture.start(t, { acme: pool });
  const synced = new SoftAuthenticator({ synced: true });
  await emailSession(t, login, 'dee@acme.example', synced);
  const stepUp = await InteractionClient.start(login.server, {
    poolId: 'acme',
    clientId: 'web',
    redirectUri: REDIRECT,
    params: { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['phr'] } } }) },
  });
  const options = await stepUp.passkeyOptions();
  const verified = await stepUp.passkeyVerify(synced.authenticate(options.body as never, login.server.url));
  const { claims } = await stepUp.finish(String(verified.body.redirect_to));
  t.is(claims.acr, 'phr');
  t.deepEqual(claims.amr, ['mfa', 'pop', 'swk', 'user']);
});

test('max_age and prompt=login ask for a new login, and auth_time moves', async (t) => {
  const login = await t.context.fixture.start(t, { acme: pool });
  const authenticator = new SoftAuthenticator();
  const { browser } = await emailSession(t, login, 'eve@acme.example', authenticator);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  for (const params of [{ max_age: '0' }, { prompt: 'login' }] as Array<Record<string, string>>) {
    const again = await InteractionClient.start(login.server, {
      poolId: 'acme',
      clientId: 'web',
      redirectUri: REDIRECT,
      browser,
      params,
    });
    const options = await again.passkeyOptions();
    const verified = await again.passkeyVerify(
      authenticator.authenticate(options.body as never, login.server.url),
    );
    const before = Math.floor(Date.now() / 1000);
    const { claims } = await again.finish(String(verified.body.redirect_to));
    t.true((claims.auth_time ?? 0) >= before - 1, JSON.stringify(params));
  }
  const silent = await silently(login, browser, { max_age: '0' });
  t.is(silent.searchParams.get('error'), 'login_required');
});
