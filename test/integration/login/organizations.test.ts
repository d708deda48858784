/**
 * Organizations in the login, through the interaction API and a real OIDC
 * client: an organization's passkey switch and "require MFA" apply to its
 * members only, a user of several picks one, the organization parameter and
 * a client's binding, non-members turned away, and `org_id`/`org_name` in
 * the ID token, userinfo and refreshed ID tokens.
 */
import type { ExecutionContext } from 'ava';
import * as client from 'openid-client';
import type { Browserless } from '../../support/browserless.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { adminCall, machineToken } from '../admin/admin-client.ts';
import {
  type LoginFixture,
  type LoginServer,
  loginTests,
  mailedCode,
  REDIRECT,
  signUp,
  startLogin,
} from './login-fixture.ts';

const test = await loginTests();
type Context = ExecutionContext<{ fixture: LoginFixture }>;

const pool = `
display_name: Orgs Pool
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [passkey, email_otp]
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email organization offline_access
    first_party: true
  - client_id: other
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email organization
    first_party: true
  - client_id: ops
    client_secret: ${'o'.repeat(40)}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: admin
  - client_id: acme-app
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email organization
    first_party: true
    organization: acme
`;

const SCOPE = 'openid email organization';

async function start(t: Context, poolId: string) {
  const login = await t.context.fixture.start(t, { [poolId]: pool });
  const organizations = login.server.runtime.durable.organizations;
  const acme = await organizations.create({ poolId, slug: 'acme', name: 'Acme Corp' });
  const globex = await organizations.create({ poolId, slug: 'globex', name: 'Globex', passkeyLogin: false });
  const initech = await organizations.create({ poolId, slug: 'initech', name: 'Initech', requireMfa: true });
  return { login, acme, globex, initech };
}

/** A user signed up (email code + passkey) outside any organization, then added to `organizationIds`. */
async function signedUpMember(
  t: Context,
  login: LoginServer,
  poolId: string,
  email: string,
  organizationIds: string[],
) {
  const authenticator = new SoftAuthenticator();
  const { login: signUpLogin, answer } = await signUp(
    login.server,
    t.context.fixture.mail,
    poolId,
    email,
    authenticator,
  );
  await signUpLogin.finish(String(answer.body.redirect_to));
  const user = await login.server.runtime.durable.users.findByEmail(poolId, email);
  if (!user) throw new Error('no user after sign-up');
  for (const id of organizationIds)
    t.is(await login.server.runtime.durable.organizations.addMember(poolId, id, user.id), 'added');
  return { authenticator, user };
}

function begin(
  server: TestServer,
  poolId: string,
  options: { clientId?: string; params?: Record<string, string>; browser?: Browserless } = {},
) {
  return InteractionClient.start(server, {
    poolId,
    clientId: options.clientId ?? 'web',
    redirectUri: REDIRECT,
    scope: SCOPE,
    ...(options.params ? { params: options.params } : {}),
    ...(options.browser ? { browser: options.browser } : {}),
  });
}

async function passkeyAnswer(login: InteractionClient, authenticator: SoftAuthenticator) {
  const options = await login.passkeyOptions();
  return login.passkeyVerify(authenticator.authenticate(options.body as never, login.server.url));
}

test('a member of an organization with passkeys off is asked for another factor after a passkey; a member of another organization signs in with it', async (t) => {
  const { login, acme, globex } = await start(t, 'orgs-switch');
  const { server } = login;
  const off = await signedUpMember(t, login, 'orgs-switch', 'gil@orgs.example', [globex.id]);
  const on = await signedUpMember(t, login, 'orgs-switch', 'ada@orgs.example', [acme.id]);

  const refused = await begin(server, 'orgs-switch');
  const again = await passkeyAnswer(refused, off.authenticator);
  t.like(again.body, {
    step: 'first_factor',
    reason: 'organization',
    methods: ['email_otp'],
    organization: { name: 'Globex' },
  });
  // Its passkey stays refused for this login: only the email code goes on.
  t.is((await refused.passkeyOptions()).status, 400);
  const code = await mailedCode(refused, t.context.fixture.mail, 'gil@orgs.example');
  const verified = await refused.verifyCode(code);
  t.truthy(verified.body.redirect_to, `no passkey offer: ${JSON.stringify(verified.body)}`);
  const { claims, tokens: offTokens } = await refused.finish(String(verified.body.redirect_to));
  t.like(claims, { org_id: globex.id, org_name: 'Globex' });
  t.false((claims.amr ?? []).includes('hwk'), 'the passkey did not count');

  const allowed = await begin(server, 'orgs-switch');
  const signedIn = await passkeyAnswer(allowed, on.authenticator);
  const tokens = await allowed.finish(String(signedIn.body.redirect_to));
  t.like(tokens.claims, { org_id: acme.id, org_name: 'Acme Corp' });

  // Outside a login too: the Globex member registers no passkey through self-service, the Acme member can.
  const registerOptions = (accessToken: string) =>
    fetch(`${server.url}/orgs-switch/api/self/passkeys/register/options`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
  const summary = await fetch(`${server.url}/orgs-switch/api/self`, {
    headers: { authorization: `Bearer ${offTokens.access_token}` },
  });
  t.like(await summary.json(), { passkeys: { enabled: false } }, 'the account page offers no passkey');
  const forbidden = await registerOptions(offTokens.access_token);
  t.is(forbidden.status, 403);
  t.like(await forbidden.json(), { error: 'passkeys_disabled' });
  const options = await registerOptions(tokens.tokens.access_token);
  t.is(options.status, 200);
  t.like(await options.json(), { user: { name: 'ada@orgs.example (Acme Corp)' } });
});

test('a request for an organization with passkeys off offers no passkey at all', async (t) => {
  const { login, globex } = await start(t, 'orgs-param');
  const started = await begin(login.server, 'orgs-param', { params: { organization: 'globex' } });
  t.like((await started.state()).body, {
    step: 'identify',
    methods: [],
    organization: { id: globex.id, name: 'Globex' },
  });
  t.is((await started.passkeyOptions()).status, 400);
});

test('require MFA: an email code is followed by the passkey, a UV passkey alone is enough, and only for its members', async (t) => {
  const { login, acme, initech } = await start(t, 'orgs-mfa');
  const { server } = login;
  const strict = await signedUpMember(t, login, 'orgs-mfa', 'ida@orgs.example', [initech.id]);
  await signedUpMember(t, login, 'orgs-mfa', 'ann@orgs.example', [acme.id]);

  const byCode = await begin(server, 'orgs-mfa');
  await byCode.identify('ida@orgs.example');
  const afterCode = await byCode.verifyCode(
    await mailedCode(byCode, t.context.fixture.mail, 'ida@orgs.example'),
  );
  t.like(afterCode.body, { step: 'second_factor', methods: ['passkey'] });
  const second = await passkeyAnswer(byCode, strict.authenticator);
  const { claims } = await byCode.finish(String(second.body.redirect_to));
  t.true(claims.amr?.includes('mfa'));
  t.is(claims.org_id, initech.id);

  const byPasskey = await begin(server, 'orgs-mfa');
  const uv = await passkeyAnswer(byPasskey, strict.authenticator);
  t.truthy(uv.body.redirect_to, 'a passkey with UV is two factors');

  // A member of another organization signs in by email code alone.
  const other = await begin(server, 'orgs-mfa');
  await other.identify('ann@orgs.example');
  const alone = await other.verifyCode(await mailedCode(other, t.context.fixture.mail, 'ann@orgs.example'));
  t.truthy(alone.body.redirect_to, `no second factor for Acme: ${JSON.stringify(alone.body)}`);
});

test('a user of several organizations picks one; only their own can be chosen, and the tokens say which', async (t) => {
  const { login, acme, initech, globex } = await start(t, 'orgs-pick');
  const both = await signedUpMember(t, login, 'orgs-pick', 'bo@orgs.example', [acme.id, initech.id]);
  const started = await begin(login.server, 'orgs-pick');
  const picker = await passkeyAnswer(started, both.authenticator);
  t.like(picker.body, { step: 'organization' });
  t.deepEqual(picker.body.organizations, [
    { id: acme.id, name: 'Acme Corp' },
    { id: initech.id, name: 'Initech' },
  ]);
  t.is((await started.post('/organization', { organization_id: globex.id })).status, 400, 'not theirs');
  t.is((await started.post('/organization', { organization_id: 'acme' })).status, 400, 'an id, not a slug');
  const chosen = await started.post('/organization', { organization_id: acme.id });
  const { claims, tokens } = await started.finish(String(chosen.body.redirect_to));
  t.like(claims, { org_id: acme.id, org_name: 'Acme Corp' });

  // userinfo says the same.
  const rp = await client.discovery(
    new URL(login.server.issuer('orgs-pick')),
    'web',
    undefined,
    client.None(),
    {
      execute: [client.allowInsecureRequests],
    },
  );
  const info = await client.fetchUserInfo(rp, tokens.access_token, claims.sub);
  t.like(info, { org_id: acme.id, org_name: 'Acme Corp' });
});

test('without the organization scope, no organization claims', async (t) => {
  const { login, acme } = await start(t, 'orgs-scope');
  const user = await signedUpMember(t, login, 'orgs-scope', 'cy@orgs.example', [acme.id]);
  const started = await InteractionClient.start(login.server, {
    poolId: 'orgs-scope',
    clientId: 'web',
    redirectUri: REDIRECT,
  });
  const answer = await passkeyAnswer(started, user.authenticator);
  const { claims } = await started.finish(String(answer.body.redirect_to));
  t.is(claims.org_id, undefined);
});

test('a request for an organization the user is not in ends with access_denied after the sign-in; an unknown one is refused at once', async (t) => {
  const { login, acme } = await start(t, 'orgs-outsider');
  const { server } = login;
  const outsider = await signedUpMember(t, login, 'orgs-outsider', 'oz@orgs.example', []);
  const started = await begin(server, 'orgs-outsider', { params: { organization: acme.id } });
  const answer = await passkeyAnswer(started, outsider.authenticator);
  const callback = await started.followToApp(String(answer.body.redirect_to));
  t.is(callback.searchParams.get('error'), 'access_denied');
  t.regex(callback.searchParams.get('error_description') ?? '', /not a member of Acme Corp/);

  // A sign-up through an organization: the email is proven, then turned away, no account made.
  const signUpTry = await begin(server, 'orgs-outsider', { params: { organization: 'acme' } });
  await signUpTry.identify('new@orgs.example');
  const proven = await signUpTry.verifyCode(
    await mailedCode(signUpTry, t.context.fixture.mail, 'new@orgs.example'),
  );
  t.truthy(proven.body.redirect_to);
  t.is(await server.runtime.durable.users.findByEmail('orgs-outsider', 'new@orgs.example'), undefined);

  const url = new URL(`${server.issuer('orgs-outsider')}/auth`);
  for (const [key, value] of Object.entries({
    client_id: 'web',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: SCOPE,
    organization: 'no-such-org',
    code_challenge: 'x'.repeat(43),
    code_challenge_method: 'S256',
  }))
    url.searchParams.set(key, value);
  const refused = await fetch(url, { redirect: 'manual' });
  const location = new URL(refused.headers.get('location') ?? '');
  t.is(location.searchParams.get('error'), 'invalid_request');
  t.is(location.searchParams.get('error_description'), 'unknown organization');
});

test('a client bound to an organization signs its members in to it, refuses naming another, and a session is not reused across organizations', async (t) => {
  const { login, acme, initech } = await start(t, 'orgs-bound');
  const { server } = login;
  const user = await signedUpMember(t, login, 'orgs-bound', 'di@orgs.example', [acme.id, initech.id]);

  const bound = await begin(server, 'orgs-bound', { clientId: 'acme-app' });
  const answer = await passkeyAnswer(bound, user.authenticator);
  t.truthy(answer.body.redirect_to, 'no picker: the client names Acme');
  const { claims } = await bound.finish(String(answer.body.redirect_to));
  t.like(claims, { org_id: acme.id, org_name: 'Acme Corp' });

  const elsewhere = new URL(`${server.issuer('orgs-bound')}/auth`);
  for (const [key, value] of Object.entries({
    client_id: 'acme-app',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: SCOPE,
    organization: 'initech',
    code_challenge: 'x'.repeat(43),
    code_challenge_method: 'S256',
  }))
    elsewhere.searchParams.set(key, value);
  const refused = await fetch(elsewhere, { redirect: 'manual' });
  t.is(new URL(refused.headers.get('location') ?? '').searchParams.get('error'), 'invalid_request');

  // The same browser, signed in for Acme, asking web for Initech: a new sign-in, not the Acme session.
  const switched = await begin(server, 'orgs-bound', {
    browser: bound.browser,
    params: { organization: 'initech' },
  });
  t.like((await switched.state()).body, { step: 'identify', organization: { name: 'Initech' } });
});

test('a refreshed ID token names the organization of the first', async (t) => {
  const { login, acme } = await start(t, 'orgs-refresh');
  const user = await signedUpMember(t, login, 'orgs-refresh', 'ev@orgs.example', [acme.id]);
  const started = await InteractionClient.start(login.server, {
    poolId: 'orgs-refresh',
    clientId: 'web',
    redirectUri: REDIRECT,
    scope: `${SCOPE} offline_access`,
    params: { prompt: 'consent' },
  });
  const answer = await passkeyAnswer(started, user.authenticator);
  const { tokens } = await started.finish(String(answer.body.redirect_to));
  t.truthy(tokens.refresh_token);
  const rp = await client.discovery(
    new URL(login.server.issuer('orgs-refresh')),
    'web',
    undefined,
    client.None(),
    {
      execute: [client.allowInsecureRequests],
    },
  );
  const refreshed = await client.refreshTokenGrant(rp, tokens.refresh_token!);
  t.like(refreshed.claims(), { org_id: acme.id, org_name: 'Acme Corp' });
});

test('a passkey made in a login for an organization is labelled with its name', async (t) => {
  const { login, initech } = await start(t, 'orgs-label');
  const { server } = login;
  const user = await server.runtime.durable.users.create({
    poolId: 'orgs-label',
    email: 'fa@orgs.example',
    emailVerified: true,
  });
  await server.runtime.durable.organizations.addMember('orgs-label', initech.id, user.id);
  const started = await startLogin(server, 'orgs-label');
  await started.identify('fa@orgs.example');
  const enroll = await started.verifyCode(
    await mailedCode(started, t.context.fixture.mail, 'fa@orgs.example'),
  );
  t.like(enroll.body, { step: 'enroll', reason: 'second_factor', optional: false });
  const options = await started.registerOptions();
  t.like(options.body, {
    user: { name: 'fa@orgs.example (Initech)', displayName: 'fa@orgs.example (Initech)' },
  });
});

/** A silent authorization (prompt=none) of `clientId` in `browser`: the ID token claims, or the error. */
async function silently(server: TestServer, poolId: string, browser: Browserless, clientId: string) {
  const rp = await client.discovery(new URL(server.issuer(poolId)), clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT,
    scope: SCOPE,
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const response = await browser.follow(url, { origin: new URL(server.url).origin });
  const callback = new URL(response.headers.get('location') ?? '');
  if (callback.searchParams.get('error')) return { error: callback.searchParams.get('error') };
  const tokens = await client.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: verifier });
  return { claims: tokens.claims() };
}

test('a session reused for another app keeps the organization of its login; one signed in for none signs in again once its user joined one', async (t) => {
  const { login, acme, initech } = await start(t, 'orgs-sso');
  const { server } = login;
  const single = await signedUpMember(t, login, 'orgs-sso', 'si@orgs.example', [acme.id]);
  const first = await begin(server, 'orgs-sso');
  await first.finish(String((await passkeyAnswer(first, single.authenticator)).body.redirect_to));
  const reused = await silently(server, 'orgs-sso', first.browser, 'other');
  t.like(reused.claims, { org_id: acme.id, org_name: 'Acme Corp' });

  const several = await signedUpMember(t, login, 'orgs-sso', 'se@orgs.example', [acme.id, initech.id]);
  const picked = await begin(server, 'orgs-sso');
  await passkeyAnswer(picked, several.authenticator);
  const chosen = await picked.post('/organization', { organization_id: initech.id });
  await picked.finish(String(chosen.body.redirect_to));
  t.like((await silently(server, 'orgs-sso', picked.browser, 'other')).claims, { org_id: initech.id });
  t.like((await silently(server, 'orgs-sso', picked.browser, 'web')).claims, { org_id: initech.id });

  // Signed in for no organization, then added to one: its policy was never met, so a new sign-in.
  const { login: joinerLogin, answer } = await signUp(
    server,
    t.context.fixture.mail,
    'orgs-sso',
    'jo@orgs.example',
    new SoftAuthenticator(),
  );
  await joinerLogin.finish(String(answer.body.redirect_to));
  const joiner = await server.runtime.durable.users.findByEmail('orgs-sso', 'jo@orgs.example');
  await server.runtime.durable.organizations.addMember('orgs-sso', initech.id, joiner!.id);
  t.deepEqual(await silently(server, 'orgs-sso', joinerLogin.browser, 'other'), { error: 'login_required' });
});

test('a login for another organization in the same browser gets a grant of its own: earlier tokens keep naming theirs', async (t) => {
  const { login, acme, initech } = await start(t, 'orgs-regrant');
  const { server } = login;
  const user = await signedUpMember(t, login, 'orgs-regrant', 'rg@orgs.example', [acme.id, initech.id]);
  const offline = { scope: `${SCOPE} offline_access`, prompt: 'consent' };
  const forAcme = await begin(server, 'orgs-regrant', { params: { organization: 'acme', ...offline } });
  const acmeTokens = await forAcme.finish(
    String((await passkeyAnswer(forAcme, user.authenticator)).body.redirect_to),
  );
  t.like(acmeTokens.claims, { org_id: acme.id });

  // The same browser, for Initech: a new sign-in (the session was for Acme), then its own grant.
  const forInitech = await InteractionClient.start(server, {
    poolId: 'orgs-regrant',
    clientId: 'web',
    redirectUri: REDIRECT,
    browser: forAcme.browser,
    scope: offline.scope,
    params: { organization: 'initech', prompt: 'consent' },
  });
  const initechTokens = await forInitech.finish(
    String((await passkeyAnswer(forInitech, user.authenticator)).body.redirect_to),
  );
  t.like(initechTokens.claims, { org_id: initech.id });

  const rp = await client.discovery(new URL(server.issuer('orgs-regrant')), 'web', undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const refreshedAcme = await client.refreshTokenGrant(rp, acmeTokens.tokens.refresh_token!);
  t.like(
    refreshedAcme.claims(),
    { org_id: acme.id, org_name: 'Acme Corp' },
    'the Acme grant still names Acme',
  );
  const refreshedInitech = await client.refreshTokenGrant(rp, initechTokens.tokens.refresh_token!);
  t.like(refreshedInitech.claims(), { org_id: initech.id });
});

test('a member removed between the sign-in and the return to the app gets no tokens for the organization', async (t) => {
  const { login, acme } = await start(t, 'orgs-removed');
  const { server } = login;
  const user = await signedUpMember(t, login, 'orgs-removed', 'rm@orgs.example', [acme.id]);
  const started = await begin(server, 'orgs-removed', { params: { organization: 'acme' } });
  const answer = await passkeyAnswer(started, user.authenticator);
  t.truthy(answer.body.redirect_to);
  t.true(await server.runtime.durable.organizations.removeMember('orgs-removed', acme.id, user.user.id));
  const callback = await started.followToApp(String(answer.body.redirect_to));
  t.is(callback.searchParams.get('error'), 'access_denied');
  t.is(callback.searchParams.get('code'), null);
});

test('no enrolment link for a member of an organization with passkey login off; one for a member of another', async (t) => {
  const { login, acme, globex } = await start(t, 'orgs-links');
  const { server } = login;
  const { durable } = server.runtime;
  const token = await machineToken(server, 'orgs-links', { clientId: 'ops', secret: 'o'.repeat(40) });
  const gil = await durable.users.create({
    poolId: 'orgs-links',
    email: 'lou@orgs.example',
    emailVerified: true,
  });
  const ada = await durable.users.create({
    poolId: 'orgs-links',
    email: 'liv@orgs.example',
    emailVerified: true,
  });
  await durable.organizations.addMember('orgs-links', globex.id, gil.id);
  await durable.organizations.addMember('orgs-links', acme.id, ada.id);
  const refused = await adminCall(server, 'orgs-links', token, 'POST', `users/${gil.id}/enrollment-link`, {});
  t.is(refused.status, 403);
  t.is(refused.body.error, 'passkeys_disabled');
  const issued = await adminCall(server, 'orgs-links', token, 'POST', `users/${ada.id}/enrollment-link`, {});
  t.is(issued.status, 201);
  // Joining a passkey-off organization afterwards: the link opens no more.
  t.is((await fetch(issued.body.url, { headers: { accept: 'text/html' } })).status, 200);
  await durable.organizations.addMember('orgs-links', globex.id, ada.id);
  t.is((await fetch(issued.body.url, { headers: { accept: 'text/html' } })).status, 403);
});
