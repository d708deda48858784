/**
 * What a visitor who never signs in can make Postern store (issue 8, item 5),
 * against real Redis: a logout request leaves a session for minutes, not
 * weeks, and authorization and logout requests are limited per client
 * address before oidc-provider stores anything.
 */
import anyTest, { type TestFn } from 'ava';
import { Redis } from 'ioredis';
import { AUTHORIZATION_LIMIT, END_SESSION_LIMIT } from '../../../src/http/pool-dispatch.ts';
import { ANONYMOUS_SESSION_TTL } from '../../../src/oidc/ttl.ts';
import { Browserless } from '../../support/browserless.ts';
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

test('logout requests from browsers that are not signed in leave no long-lived session; a signed-in one keeps two weeks', async (t) => {
  const { fixture, redis } = t.context;
  const login = await fixture.start(t, { leave: poolFile() });
  const { server } = login;

  // One logout all the way: the form oidc-provider posts back still finds its secret.
  const browser = new Browserless();
  const page = await browser.fetch(`${server.issuer('leave')}/session/end`);
  t.is(page.status, 200);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())?.[1];
  t.truthy(xsrf, 'the logout form carries its secret');
  const confirmed = await browser.fetch(`${server.issuer('leave')}/session/end/confirm`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ xsrf: xsrf ?? '', logout: 'yes' }).toString(),
  });
  t.is(confirmed.status, 303);
  t.regex(confirmed.headers.get('location') ?? '', /\/leave\/session\/end\/success$/);

  // Many more, each from a new browser, as a script would make them.
  for (let i = 0; i < 20; i++) t.is((await fetch(`${server.issuer('leave')}/session/end`)).status, 200);
  const anonymous = await sessionTtls(redis, login, 'leave');
  t.true(anonymous.length >= 20, `sessions stored: ${anonymous.length}`);
  for (const ttl of anonymous)
    t.true(ttl > 0 && ttl <= ANONYMOUS_SESSION_TTL * 1000, `a session lives ${ttl} ms`);

  // A sign-in's session is saved for two weeks.
  const { login: signedIn, answer } = await signUp(
    server,
    fixture.mail,
    'leave',
    'ada@leave.example',
    new SoftAuthenticator(),
  );
  await signedIn.finish(String(answer.body.redirect_to));
  const after = await sessionTtls(redis, login, 'leave');
  t.is(after.filter((ttl) => ttl > 13 * DAY_MS).length, 1, 'the signed-in session lives two weeks');
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
