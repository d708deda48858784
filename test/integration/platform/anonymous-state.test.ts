/**
 * What a visitor who never signs in can make Postern store (issue 8, item 5),
 * against real Redis: a logout request from a browser signed in to nothing
 * stores no session, and authorization and logout requests are limited per
 * client address before oidc-provider stores anything.
 */
import anyTest, { type TestFn } from 'ava';
import { Redis } from 'ioredis';
import { AUTHORIZATION_LIMIT, END_SESSION_LIMIT } from '../../../src/http/pool-dispatch.ts';
import { probePostgres, probeRedis, redisTestUrl, serviceTest } from '../../support/services.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  type LoginFixture,
  type LoginServer,
  openLoginFixture,
  poolFile,
  REDIRECT,
  signUp,
} from '../login/login-fixture.ts';

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce(
  (fn, probe) => serviceTest(fn, probe),
  anyTest as TestFn<{ fixture: LoginFixture; redis: Redis }>,
);

test.before(async (t) => {
  t.context.fixture = await openLoginFixture();
  t.context.redis = new Redis(redisTestUrl(), { maxRetriesPerRequest: 1 });
});
test.after.always(async (t) => {
  t.context.redis?.disconnect();
  await t.context.fixture?.close();
});

const DAY_MS = 24 * 3600 * 1000;

/** Milliseconds left of every stored session of `poolId` on this server. */
async function sessionTtls(redis: Redis, login: LoginServer, poolId: string): Promise<number[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${login.prefix}oidc:${poolId}:Session:*`);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return Promise.all(keys.map((key) => redis.pttl(key)));
}

function authorizeUrl(issuer: string): URL {
  const url = new URL(`${issuer}/auth`);
  for (const [key, value] of Object.entries({
    client_id: 'web',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid email',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  })) {
    url.searchParams.set(key, value);
  }
  return url;
}

const SIGNED_OUT_URI = 'http://127.0.0.1:8750/signed-out';

/** poolFile() with a post-logout redirect URI registered for `web`. */
const logoutPool = () =>
  poolFile().replace(
    '    first_party: true\n',
    `    first_party: true\n    post_logout_redirect_uris: ["${SIGNED_OUT_URI}"]\n`,
  );

test('logout requests from browsers signed in to nothing store no session, and go back to the app only where oidc-provider would send them', async (t) => {
  const { fixture, redis } = t.context;
  const login = await fixture.start(t, { leave: logoutPool() });
  const { server } = login;
  const end = (query: Record<string, string | string[]> = {}) => {
    const url = new URL(`${server.issuer('leave')}/session/end`);
    for (const [key, value] of Object.entries(query))
      for (const item of [value].flat()) url.searchParams.append(key, item);
    return url;
  };

  // A signed-in user, whose ID token an app could send as id_token_hint.
  const { login: signedIn, answer } = await signUp(
    server,
    fixture.mail,
    'leave',
    'ada@leave.example',
    new SoftAuthenticator(),
  );
  const { tokens } = await signedIn.finish(String(answer.body.redirect_to));
  const hint = String(tokens.id_token);
  t.is((await sessionTtls(redis, login, 'leave')).length, 1, 'the sign-in stored its session');

  // Followed: the registered URI, for the client named by client_id or by a valid hint, with state.
  const followed: Array<Record<string, string>> = [
    { client_id: 'web', post_logout_redirect_uri: SIGNED_OUT_URI, state: 'st-1' },
    { id_token_hint: hint, post_logout_redirect_uri: SIGNED_OUT_URI, state: 'st-1' },
    { id_token_hint: hint, client_id: 'web', post_logout_redirect_uri: SIGNED_OUT_URI, state: 'st-1' },
  ];
  // Not followed: the signed-out page.
  const forged = `${hint.split('.').slice(0, 2).join('.')}.${'A'.repeat(86)}`;
  const refused: Array<Record<string, string | string[]>> = [
    {},
    { post_logout_redirect_uri: SIGNED_OUT_URI },
    { client_id: 'web', post_logout_redirect_uri: 'https://evil.example/' },
    { client_id: 'web', post_logout_redirect_uri: `${SIGNED_OUT_URI}/more` },
    { client_id: 'partner', post_logout_redirect_uri: SIGNED_OUT_URI },
    { client_id: 'nobody', post_logout_redirect_uri: SIGNED_OUT_URI },
    { id_token_hint: hint, client_id: 'partner', post_logout_redirect_uri: SIGNED_OUT_URI },
    { id_token_hint: forged, post_logout_redirect_uri: SIGNED_OUT_URI },
    { id_token_hint: 'not-a-jwt', post_logout_redirect_uri: SIGNED_OUT_URI },
    { client_id: ['web', 'web'], post_logout_redirect_uri: SIGNED_OUT_URI },
  ];
  let sent = 0;
  for (let round = 0; sent < 30; round++) {
    for (const query of followed) {
      const response = await fetch(end(query), { redirect: 'manual' });
      t.is(response.status, 303, JSON.stringify(query));
      t.is(response.headers.get('location'), `${SIGNED_OUT_URI}?state=st-1`, JSON.stringify(query));
      sent++;
    }
    for (const query of refused) {
      const response = await fetch(end(query), { redirect: 'manual' });
      t.is(response.status, 200, JSON.stringify(query));
      t.is(response.headers.get('location'), null, JSON.stringify(query));
      t.regex(await response.text(), /You are signed out/, JSON.stringify(query));
      sent++;
    }
    // A cookie that is no session of this pool's, and HEAD, which oidc-provider answers as GET.
    const cookie = { cookie: 'postern.leave.session=forged; postern.leave.session.sig=forged' };
    t.is((await fetch(end(), { headers: cookie, redirect: 'manual' })).status, 200);
    t.is((await fetch(end(), { method: 'HEAD', redirect: 'manual' })).status, 200);
    sent += 2;
    t.true(round < 5);
  }
  const sessions = await sessionTtls(redis, login, 'leave');
  t.is(sessions.length, 1, `sessions stored after ${sent} anonymous logouts: ${sessions.length}`);
  t.true((sessions[0] ?? 0) > 13 * DAY_MS, 'the signed-in session lives two weeks');

  // The signed-in browser's logout is oidc-provider's: a confirmation, then back to the app.
  const browser = signedIn.browser;
  const page = await browser.fetch(
    end({ client_id: 'web', post_logout_redirect_uri: SIGNED_OUT_URI, state: 'bye' }),
  );
  t.is(page.status, 200);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())?.[1];
  t.truthy(xsrf, 'the confirmation carries its secret');
  const confirmed = await browser.fetch(`${server.issuer('leave')}/session/end/confirm`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ xsrf: xsrf ?? '', logout: 'yes' }).toString(),
    redirect: 'manual',
  });
  t.is(confirmed.status, 303);
  t.is(confirmed.headers.get('location'), `${SIGNED_OUT_URI}?state=bye`);
  t.deepEqual(await sessionTtls(redis, login, 'leave'), [], 'the session is gone');
});

test('authorization requests past the limit for one address answer 429 with Retry-After, as JSON or a page; another address goes on', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { flood: poolFile() }, { server: 'trust_proxy: true\n' });
  const from = (address: string, accept = 'application/json') => ({
    redirect: 'manual' as const,
    headers: { 'x-forwarded-for': address, accept },
  });
  const url = authorizeUrl(server.issuer('flood'));
  for (let i = 0; i < AUTHORIZATION_LIMIT.points; i++) {
    const response = await fetch(url, from('198.51.100.7'));
    t.is(response.status, 303, `request ${i + 1} starts an interaction`);
  }
  const refused = await fetch(url, from('198.51.100.7'));
  t.is(refused.status, 429);
  t.true(Number(refused.headers.get('retry-after')) >= 1);
  t.like(await refused.json(), { error: 'rate_limited' });

  const page = await fetch(url, from('198.51.100.7', 'text/html'));
  t.is(page.status, 429);
  t.regex(page.headers.get('content-type') ?? '', /html/);
  t.true(Number(page.headers.get('retry-after')) >= 1);

  t.is((await fetch(url, from('198.51.100.8'))).status, 303, 'another address is not held back');
});

test('the limits count an endpoint however its path is spelt, and HEAD as GET: oidc-provider routes them all', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { flood: poolFile() }, { server: 'trust_proxy: true\n' });
  const from = (address: string, method = 'GET') => ({
    method,
    redirect: 'manual' as const,
    headers: { 'x-forwarded-for': address, accept: 'application/json' },
  });
  const query = authorizeUrl(server.issuer('flood')).search;
  const spellings = ['/AUTH', '/Auth/', '/auth'];
  for (let i = 0; i < AUTHORIZATION_LIMIT.points; i++) {
    const method = i % 4 === 3 ? 'HEAD' : 'GET';
    const path = spellings[i % spellings.length];
    const response = await fetch(`${server.issuer('flood')}${path}${query}`, from('198.51.100.9', method));
    t.is(response.status, 303, `${method} ${path}: oidc-provider starts an interaction`);
  }
  for (const path of spellings) {
    const refused = await fetch(`${server.issuer('flood')}${path}${query}`, from('198.51.100.9'));
    t.is(refused.status, 429, path);
  }
  t.is((await fetch(`${server.issuer('flood')}/auth${query}`, from('198.51.100.9', 'HEAD'))).status, 429);

  const logout = ['/Session/End', '/SESSION/END/', '/session/end'];
  for (let i = 0; i < END_SESSION_LIMIT.points; i++) {
    const method = i % 4 === 3 ? 'HEAD' : 'GET';
    const path = logout[i % logout.length];
    const response = await fetch(`${server.issuer('flood')}${path}`, from('198.51.100.9', method));
    t.is(response.status, 200, `${method} ${path}`);
  }
  for (const path of logout)
    t.is((await fetch(`${server.issuer('flood')}${path}`, from('198.51.100.9'))).status, 429, path);
});

test('logout requests past the limit for one address answer 429', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { 'flood-out': poolFile() });
  const url = `${server.issuer('flood-out')}/session/end`;
  for (let i = 0; i < END_SESSION_LIMIT.points; i++) t.is((await fetch(url)).status, 200);
  const refused = await fetch(url, { headers: { accept: 'application/json' } });
  t.is(refused.status, 429);
  t.true(Number(refused.headers.get('retry-after')) >= 1);
  t.like(await refused.json(), { error: 'rate_limited' });
});

test('IPv6 clients are limited by their /64: new addresses inside it get no new allowance', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { flood: poolFile() }, { server: 'trust_proxy: true\n' });
  const url = authorizeUrl(server.issuer('flood'));
  const from = (address: string) => ({
    redirect: 'manual' as const,
    headers: { 'x-forwarded-for': address, accept: 'application/json' },
  });
  for (let i = 1; i <= AUTHORIZATION_LIMIT.points; i++) {
    const response = await fetch(url, from(`2001:db8:1:2::${i.toString(16)}`));
    t.is(response.status, 303, `address ${i} of the /64`);
  }
  const refused = await fetch(url, from('2001:db8:1:2:8000:aaaa:bbbb:1'));
  t.is(refused.status, 429, 'another address of the same /64');
  t.is((await fetch(url, from('2001:db8:1:3::1'))).status, 303, 'the next /64 is not held back');
});
