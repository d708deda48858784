/**
 * Postern's own cookies take Secure from public_url (issue 8, item 6): behind
 * a TLS-terminating proxy without trust_proxy, Koa sees plain http while the
 * browser is on https, and a cookie without Secure would also travel over
 * http. The known-device cookie of the interaction API and the demo app's
 * cookies are tried here; oidc-provider's own cookies are in
 * ./provider-cookies.test.ts.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { KNOWN_DEVICE_COOKIE } from '../../../src/interactions/known-devices.ts';
import { Browserless } from '../../support/browserless.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import { type MailSink, startMailSink } from '../../support/mail-sink.ts';
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
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { poolFile, REDIRECT } from '../login/login-fixture.ts';

interface Context {
  database: TestDatabase;
  mail: MailSink;
  prefixes: string[];
}

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<Context>);

test.before(async (t) => {
  t.context.prefixes = [];
  t.context.database = await createTestDatabase();
  t.context.mail = await startMailSink();
  const { openStores } = await import('../../../src/storage/open-stores.ts');
  const prefix = uniqueKeyPrefix();
  t.context.prefixes.push(prefix);
  const stores = await openStores({
    databaseUrl: t.context.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  await stores.durable.migrate();
  await stores.close();
});
test.after.always(async (t) => {
  await t.context.mail?.close();
  for (const prefix of t.context.prefixes ?? []) await deleteKeysWithPrefix(prefix);
  await t.context.database?.drop();
});

/** A browser that keeps every Set-Cookie line it was sent. */
class RecordingBrowser extends Browserless {
  readonly setCookies: string[] = [];

  override async fetch(input: string | URL, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const response = await super.fetch(input, init);
    this.setCookies.push(...response.headers.getSetCookie());
    return response;
  }
}

const attributesOf = (cookie: string) =>
  cookie
    .toLowerCase()
    .split(';')
    .map((part) => part.trim());

/** A server whose public URL has `scheme`, reached by the test over plain http (as a TLS proxy would). */
async function start(
  t: ExecutionContext<Context>,
  scheme: 'http' | 'https',
  pools: Record<string, string>,
): Promise<TestServer> {
  const prefix = uniqueKeyPrefix();
  t.context.prefixes.push(prefix);
  const port = await freePort();
  const server = await startTestServer({
    pools,
    databaseUrl: t.context.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    port,
    publicUrl: `${scheme}://localhost:${port}`,
    env: { SMTP_URL: t.context.mail.url },
  });
  t.teardown(() => server.stop());
  t.true(server.listenUrl.startsWith('http://'));
  return server;
}

/** The known-device cookie a sign-up through the interaction API sets, over the server's plain http. */
async function knownDeviceCookie(t: ExecutionContext<Context>, server: TestServer, poolId: string) {
  // The API is called where the server listens; the passkey's origin is the public one.
  const direct = { ...server, url: server.listenUrl, issuer: (id: string) => `${server.listenUrl}/${id}` };
  const browser = new RecordingBrowser();
  const login = await InteractionClient.start(direct, {
    poolId,
    clientId: 'web',
    redirectUri: REDIRECT,
    browser,
  });
  const email = `ada@${poolId}.example`;
  await login.identify(email);
  await login.sendCode();
  const verified = await login.verifyCode(await t.context.mail.nextCode(email));
  t.like(verified.body, { step: 'enroll' });
  const options = await login.registerOptions();
  const registered = await login.registerVerify(
    new SoftAuthenticator().register(options.body as never, server.url),
  );
  t.is(registered.status, 200, JSON.stringify(registered.body));
  const cookies = browser.setCookies.filter((cookie) => cookie.startsWith(`${KNOWN_DEVICE_COOKIE}=`));
  t.is(cookies.length, 1, 'the sign-up remembers the browser');
  return attributesOf(cookies[0] ?? '');
}

test('with an https public_url, the known-device cookie is Secure although Postern is reached over http', async (t) => {
  const server = await start(t, 'https', { 'secure-device': poolFile() });
  const attributes = await knownDeviceCookie(t, server, 'secure-device');
  t.true(attributes.includes('secure'), attributes.join('; '));
  t.true(attributes.includes('httponly'));
  t.true(attributes.includes('samesite=lax'));
});

test('with an http public_url (local development), the known-device cookie is not Secure', async (t) => {
  const server = await start(t, 'http', { 'plain-device': poolFile() });
  const attributes = await knownDeviceCookie(t, server, 'plain-device');
  t.false(attributes.includes('secure'), attributes.join('; '));
});

const DEMO_POOL = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: demo-app
    token_endpoint_auth_method: none
    redirect_uris: ["\${PUBLIC_URL}/callback"]
    post_logout_redirect_uris: ["\${PUBLIC_URL}/"]
    first_party: true
`;

test('with an https public_url, the demo app’s cookies are Secure although it is reached over http', async (t) => {
  const server = await start(t, 'https', { demo: DEMO_POOL });
  // Signing out clears the demo's session cookie before the app looks up the pool; that lookup goes to
  // the https public URL, which nothing serves in this test, so the answer is the demo's own 502.
  const browser = new RecordingBrowser();
  const answer = await browser.fetch(`${server.listenUrl}/signout`, {
    headers: { accept: 'application/json' },
  });
  t.is(answer.status, 502, await answer.text());
  const cleared = browser.setCookies.filter((cookie) => cookie.startsWith('postern.demo-app.session'));
  t.true(cleared.length > 0, 'the session cookie is cleared');
  for (const cookie of cleared) t.true(attributesOf(cookie).includes('secure'), cookie);
});
