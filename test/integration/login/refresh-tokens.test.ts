/**
 * Refresh tokens as a relying app gets them (README, "For relying apps"):
 * `offline_access` is granted only with `prompt=consent` (OIDC Core §11);
 * a first-party client then gets its refresh token without a consent
 * screen, a third-party one after the user allows it.
 */
import { InteractionClient } from '../../support/interaction-client.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { loginTests, REDIRECT, signUp } from './login-fixture.ts';

const test = await loginTests();

const pool = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
    first_party: true
  - client_id: partner
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
`;

const OFFLINE = { scope: 'openid email offline_access' };

test('a first-party client gets a refresh token for offline_access with prompt=consent, and no consent screen', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { refresh: pool });
  const authenticator = new SoftAuthenticator();
  const { login: first } = await signUp(
    server,
    fixture.mail,
    'refresh',
    'ada@refresh.example',
    authenticator,
  );
  const { browser } = first;

  // Without prompt=consent, offline_access is dropped: no refresh token.
  const plain = await InteractionClient.start(server, {
    poolId: 'refresh',
    clientId: 'web',
    redirectUri: REDIRECT,
    browser,
    ...OFFLINE,
    params: { prompt: 'login' },
  });
  const plainAnswer = await plain.passkeyVerify(
    authenticator.authenticate((await plain.passkeyOptions()).body as never, server.url),
  );
  t.is((await plain.finish(String(plainAnswer.body.redirect_to))).tokens.refresh_token, undefined);

  // With it, a signed-in user of a first-party client goes straight back: no screen, a refresh token.
  const consented = await InteractionClient.start(server, {
    poolId: 'refresh',
    clientId: 'web',
    redirectUri: REDIRECT,
    browser,
    ...OFFLINE,
    params: { prompt: 'consent' },
  });
  const state = await consented.state();
  t.truthy(state.body.redirect_to, `no consent step: ${JSON.stringify(state.body)}`);
  const { tokens } = await consented.finish(String(state.body.redirect_to));
  t.truthy(tokens.refresh_token);
  t.true(String(tokens.scope).split(' ').includes('offline_access'));
});

test('a third-party client gets its refresh token after the user allows it', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { 'refresh-partner': pool });
  const authenticator = new SoftAuthenticator();
  const { login: first, answer } = await signUp(
    server,
    fixture.mail,
    'refresh-partner',
    'bea@refresh-partner.example',
    authenticator,
  );
  await first.finish(String(answer.body.redirect_to));
  const partner = await InteractionClient.start(server, {
    poolId: 'refresh-partner',
    clientId: 'partner',
    redirectUri: REDIRECT,
    browser: first.browser,
    ...OFFLINE,
    params: { prompt: 'consent' },
  });
  const state = await partner.state();
  t.like(state.body, { step: 'consent' });
  t.true((state.body.scopes as string[]).includes('offline_access'));
  const allowed = await partner.consent('allow');
  const { tokens } = await partner.finish(String(allowed.body.redirect_to));
  t.truthy(tokens.refresh_token);
});
