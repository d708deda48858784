/**
 * oidc-provider's own cookies (interaction, resume, session) take Secure from
 * the pool's issuer: behind a TLS-terminating proxy, Postern listens on http
 * while public_url is https, and the cookies must still never travel in clear.
 */
import { randomUUID } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import { openStores } from '../../../src/storage/open-stores.ts';
import { Browserless } from '../../support/browserless.ts';
import { finishLogin } from '../../support/finish-login.ts';
import { freePort, startTestServer, type TestServer } from '../../support/postern-server.ts';
import {
  createTestDatabase,
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  type TestDatabase,
  uniqueKeyPrefix,
} from '../../support/services.ts';

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce(
  (fn, probe) => serviceTest(fn, probe),
  anyTest as TestFn<{ database: TestDatabase; prefixes: string[] }>,
);

test.before(async (t) => {
  t.context.database = await createTestDatabase();
  t.context.prefixes = [uniqueKeyPrefix()];
  const stores = await openStores({
    databaseUrl: t.context.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: t.context.prefixes[0],
  });
  await stores.durable.migrate();
  await stores.close();
});
test.after.always(async (t) => {
  for (const prefix of t.context.prefixes ?? []) await deleteKeysWithPrefix(prefix);
  await t.context.database?.drop();
});

const REDIRECT = 'http://localhost:8080/callback';
const pool = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    first_party: true
`;

async function start(t: { context: { database: TestDatabase; prefixes: string[] } }, scheme: string) {
  const prefix = uniqueKeyPrefix();
  t.context.prefixes.push(prefix);
  const port = await freePort();
  const server = await startTestServer({
    pools: { cookies: pool },
    databaseUrl: t.context.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    port,
    publicUrl: `${scheme}://localhost:${port}`,
  });
  return server;
}

/** The Set-Cookie lines of oidc-provider's cookies for the pool, through a sign-in. */
async function providerCookies(server: TestServer): Promise<string[]> {
  const user = await server.runtime.durable.users.create({
    poolId: 'cookies',
    email: `ada-${randomUUID()}@cookies.example`,
    emailVerified: true,
  });
  const browser = new Browserless();
  const url = new URL(`${server.listenUrl}/cookies/auth`);
  for (const [key, value] of Object.entries({
    client_id: 'web',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  })) {
    url.searchParams.set(key, value);
  }
  const started = await browser.fetch(url);
  const uid = (started.headers.get('location') ?? '').split('/').pop() ?? '';
  const returnTo = await finishLogin(server.registry.get('cookies')!.provider, uid, { accountId: user.id });
  const resumed = await browser.fetch(returnTo.replace(server.url, server.listenUrl));
  if (!(resumed.headers.get('location') ?? '').startsWith(REDIRECT))
    throw new Error(`the sign-in did not return to the app: ${resumed.status}`);
  return [...started.headers.getSetCookie(), ...resumed.headers.getSetCookie()].filter((cookie) =>
    cookie.startsWith('postern.cookies.'),
  );
}

const names = (cookies: string[]) => [...new Set(cookies.map((cookie) => cookie.split('=')[0]))].sort();

test('with an https public_url, oidc-provider’s cookies are Secure although Postern is reached over http', async (t) => {
  const server = await start(t, 'https');
  t.teardown(() => server.stop());
  t.true(server.listenUrl.startsWith('http://'));
  const cookies = await providerCookies(server);
  t.deepEqual(names(cookies), [
    'postern.cookies.interaction',
    'postern.cookies.interaction.sig',
    'postern.cookies.resume',
    'postern.cookies.resume.sig',
    'postern.cookies.session',
    'postern.cookies.session.sig',
  ]);
  for (const cookie of cookies) {
    const attributes = cookie
      .toLowerCase()
      .split(';')
      .map((part) => part.trim());
    t.true(attributes.includes('secure'), cookie);
    t.true(attributes.includes('httponly'), cookie);
    t.true(attributes.includes('samesite=lax'), cookie);
  }
});

test('with an http public_url (local development), they are not Secure, or no browser would send them', async (t) => {
  const server = await start(t, 'http');
  t.teardown(() => server.stop());
  const cookies = await providerCookies(server);
  t.true(cookies.length >= 6);
  for (const cookie of cookies)
    t.false(
      cookie
        .toLowerCase()
        .split(';')
        .map((part) => part.trim())
        .includes('secure'),
      cookie,
    );
});
