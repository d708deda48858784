/**
 * `passkeys.enabled: false` really stops passkeys (issue 11, item 2, for a
 * pool): nothing offers, asks for or registers one (the sign-in page, sign-up,
 * self-service, enrolment links), users sign in and up by email code, and the
 * passkeys already stored stay, working again once the pool switches them back
 * on. Two servers share one database: the same pool with passkeys on and off.
 */
import { randomUUID } from 'node:crypto';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { adminCall, machineToken } from '../admin/admin-client.ts';
import {
  loginTests,
  mailedCode,
  passkeySignIn,
  REDIRECT,
  signUp,
  startLogin,
} from '../login/login-fixture.ts';

const test = await loginTests();

const ADMIN_SECRET = 'admin-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

const pool = (enabled: boolean) => `
display_name: Switch
passkeys:
  enabled: ${enabled}
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
    grant_types: [authorization_code]
    scope: openid email
    first_party: true
  - client_id: ops
    client_secret: ${ADMIN_SECRET}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: admin
`;

test('with passkeys switched off nothing offers or registers one; stored passkeys work again once back on', async (t) => {
  const { fixture } = t.context;
  const { mail } = fixture;
  const on = (await fixture.start(t, { sw: pool(true) })).server;
  const authenticator = new SoftAuthenticator();
  const email = 'ada@sw.example';
  await signUp(on, mail, 'sw', email, authenticator);
  const ada = await on.runtime.durable.users.findByEmail('sw', email);

  const off = (await fixture.start(t, { sw: pool(false) })).server;

  // The sign-in page: no passkey at once, none among the first factors, none accepted.
  const login = await startLogin(off, 'sw');
  t.deepEqual((await login.state()).body.methods, []);
  const options = await login.passkeyOptions();
  t.is(options.status, 400, JSON.stringify(options.body));
  t.deepEqual((await login.identify(email)).body.methods, ['email_otp']);
  const signedIn = await login.verifyCode(await mailedCode(login, mail, email));
  const { tokens, claims } = await login.finish(String(signedIn.body.redirect_to));
  t.is(claims.sub, ada?.id ?? 'missing', 'an email code signs the user in, with no passkey offered after it');

  // Sign-up by email code alone: the proven email is the account, nothing to enrol.
  const newcomer = await startLogin(off, 'sw');
  await newcomer.identify('ben@sw.example');
  const joined = await newcomer.verifyCode(await mailedCode(newcomer, mail, 'ben@sw.example'));
  t.truthy(joined.body.redirect_to, JSON.stringify(joined.body));
  const ben = await off.runtime.durable.users.findByEmail('sw', 'ben@sw.example');
  t.truthy(ben);
  t.deepEqual(await off.runtime.durable.passkeys.listByUser('sw', ben!.id), []);
  const registerAtSignUp = await newcomer.registerOptions();
  t.not(registerAtSignUp.status, 200, 'no passkey registration once signed up, either');

  // Self-service: the stored passkey is listed, none can be added.
  const self = (path: string, init: RequestInit = {}) =>
    fetch(`${off.url}/sw/api/self/${path}`, {
      ...init,
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' },
    });
  t.like(await (await self('')).json(), { passkeys: { enabled: false } });
  t.is(((await (await self('passkeys')).json()) as unknown[]).length, 1);
  const added = await self('passkeys/register/options', { method: 'POST', body: '{}' });
  t.is(added.status, 403);
  t.like(await added.json(), { error: 'passkeys_disabled' });

  // Enrolment links: nothing to enrol.
  const token = await machineToken(off, 'sw', { clientId: 'ops', secret: ADMIN_SECRET });
  const link = await adminCall(off, 'sw', token, 'POST', `users/${ada!.id}/enrollment-link`, {});
  t.is(link.status, 403);
  t.is(link.body.error, 'passkeys_disabled');
  t.is((await adminCall(off, 'sw', token, 'POST', `users/${randomUUID()}/enrollment-link`, {})).status, 404);

  // Back on: the stored passkey signs in as before.
  const { answer } = await passkeySignIn(on, 'sw', authenticator);
  t.truthy(answer.body.redirect_to, JSON.stringify(answer.body));
});
