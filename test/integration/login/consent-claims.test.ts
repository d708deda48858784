/**
 * What a relying app gets is what the consent screen listed (issue 8, item 1):
 * a claim named in the claims parameter (OIDC Core §5.5) is released only
 * within the scopes granted, whether the user consented on the screen (a
 * third-party client) or the consent is implied (a first-party client).
 * openid-client is the relying party; logins use the software authenticator.
 */
import * as client from 'openid-client';
import { Browserless } from '../../support/browserless.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { loginTests, REDIRECT, signUp } from './login-fixture.ts';

const test = await loginTests();

/** `web` is first-party and may ask for email; `partner` is a third party allowed only openid. */
const pool = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
  - client_id: partner
    client_name: Partner App
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid
`;

const EMAIL_CLAIMS = JSON.stringify({ id_token: { email: null }, userinfo: { email: null } });

/** What userinfo answers `clientId` for this access token, through openid-client. */
async function userinfo(
  server: TestServer,
  poolId: string,
  clientId: string,
  accessToken: string,
  sub: string,
) {
  const rp = await client.discovery(new URL(server.issuer(poolId)), clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  return client.fetchUserInfo(rp, accessToken, sub);
}

test('a third-party client allowed only openid gets no email from the claims parameter, after a consent screen listing openid', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { consented: pool });
  const { login: first, answer } = await signUp(
    server,
    fixture.mail,
    'consented',
    'ada@consented.example',
    new SoftAuthenticator(),
  );
  await first.finish(String(answer.body.redirect_to));

  const partner = await InteractionClient.start(server, {
    poolId: 'consented',
    clientId: 'partner',
    redirectUri: REDIRECT,
    browser: first.browser,
    scope: 'openid',
    params: { claims: EMAIL_CLAIMS },
  });
  const state = await partner.state();
  t.like(state.body, { step: 'consent', scopes: ['openid'] });
  const allowed = await partner.consent('allow');
  t.is(allowed.status, 200);
  // The login lands on the app (the refused claim does not send the user back to consent).
  const { tokens, claims } = await partner.finish(String(allowed.body.redirect_to));
  t.truthy(claims.sub);
  t.is(claims.email, undefined, 'no email in the ID token');
  t.is(claims.email_verified, undefined);
  const info = await userinfo(server, 'consented', 'partner', tokens.access_token, claims.sub);
  t.is(info.sub, claims.sub);
  t.is(info.email, undefined, 'no email from userinfo');
});

/** A passkey sign-in of `web` in a fresh browser, with this scope and claims parameter. */
async function signInWeb(
  server: TestServer,
  poolId: string,
  authenticator: SoftAuthenticator,
  scope: string,
) {
  const login = await InteractionClient.start(server, {
    poolId,
    clientId: 'web',
    redirectUri: REDIRECT,
    browser: new Browserless(),
    scope,
    params: { claims: EMAIL_CLAIMS },
  });
  const options = await login.passkeyOptions();
  const signedIn = await login.passkeyVerify(authenticator.authenticate(options.body as never, server.url));
  if (!signedIn.body.redirect_to) throw new Error(`no sign-in: ${JSON.stringify(signedIn.body)}`);
  const { tokens, claims } = await login.finish(String(signedIn.body.redirect_to));
  const info = await userinfo(server, poolId, 'web', tokens.access_token, claims.sub);
  return { claims, info };
}

test('a first-party client gets email with the email scope, and not from the claims parameter alone', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { implied: pool });
  const authenticator = new SoftAuthenticator();
  const { login: first, answer } = await signUp(
    server,
    fixture.mail,
    'implied',
    'bea@implied.example',
    authenticator,
  );
  // signUp asks for `openid email`: userinfo releases the scope's claims.
  const { tokens, claims } = await first.finish(String(answer.body.redirect_to));
  const info = await userinfo(server, 'implied', 'web', tokens.access_token, claims.sub);
  t.is(info.email, 'bea@implied.example');
  t.is(info.email_verified, true);

  // The email scope and the claims parameter: email in the ID token too.
  const wide = await signInWeb(server, 'implied', authenticator, 'openid email');
  t.is(wide.claims.sub, claims.sub);
  t.is(wide.claims.email, 'bea@implied.example');
  t.is(wide.info.email, 'bea@implied.example');

  // Scope openid, email asked through the claims parameter only: none anywhere.
  const narrow = await signInWeb(server, 'implied', authenticator, 'openid');
  t.is(narrow.claims.sub, claims.sub);
  t.is(narrow.claims.email, undefined, 'no email in the ID token without the email scope');
  t.is(narrow.info.email, undefined, 'no email from userinfo without the email scope');
});

test('a malformed claims parameter is refused at the authorization endpoint, not answered with a 500', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { malformed: pool });
  for (const claims of ['{"id_token":', '[]', '{"id_token":5}', '{"userinfo":{"email":null}', '"x"']) {
    const url = new URL(`${server.issuer('malformed')}/auth`);
    for (const [key, value] of Object.entries({
      client_id: 'web',
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'openid email',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      claims,
    })) {
      url.searchParams.set(key, value);
    }
    const response = await fetch(url, { redirect: 'manual' });
    t.is(response.status, 303, claims);
    const location = new URL(response.headers.get('location') ?? '', server.url);
    t.is(location.origin + location.pathname, REDIRECT, claims);
    t.is(location.searchParams.get('error'), 'invalid_request', claims);
  }
});
