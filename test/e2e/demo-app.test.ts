/**
 * The demo as a newcomer meets it: the relying app at `/` on the shipped demo
 * pool. A new user signs up with an email code and a passkey, signs in again
 * with the passkey, and the claims page shows how (amr, acr).
 */
import { readFile } from 'node:fs/promises';
import anyTest, { type TestFn } from 'ava';
import { addVirtualAuthenticator, launchChromium, probeChromium } from '../support/chromium.ts';
import { type MailSink, startMailSink } from '../support/mail-sink.ts';
import { startTestServer, type TestServer } from '../support/postern-server.ts';
import {
  createTestDatabase,
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  type TestDatabase,
  uniqueKeyPrefix,
} from '../support/services.ts';

const probes = await Promise.all([probePostgres(), probeRedis(), probeChromium()]);
const test = probes.reduce(
  (fn, probe) => serviceTest(fn, probe),
  anyTest as TestFn<{ server: TestServer; mail: MailSink; database: TestDatabase; prefix: string }>,
);

test.before(async (t) => {
  const database = await createTestDatabase();
  const prefix = uniqueKeyPrefix();
  const mail = await startMailSink();
  const { openStores } = await import('../../src/storage/open-stores.ts');
  const stores = await openStores({
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  await stores.durable.migrate();
  await stores.close();
  const demo = await readFile(new URL('../../config/pools/demo.yaml', import.meta.url), 'utf8');
  const server = await startTestServer({
    pools: { demo },
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    env: { SMTP_URL: mail.url },
  });
  t.context = { server, mail, database, prefix };
});

test.after.always(async (t) => {
  await t.context.server?.stop();
  await t.context.mail?.close();
  await t.context.database?.drop();
  if (t.context.prefix) await deleteKeysWithPrefix(t.context.prefix);
});

test('a newcomer signs up and signs in with a passkey in the demo, and sees amr and acr', async (t) => {
  const { server, mail } = t.context;
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await addVirtualAuthenticator(page);

  await page.goto(`${server.url}/`);
  await page.getByRole('link', { name: 'Sign in with Postern' }).click();
  await page.getByRole('heading', { name: 'Sign in to Postern Demo App' }).waitFor();
  await page.getByLabel('Email').fill('newcomer@example.com');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await page.getByLabel('Code', { exact: true }).fill(await mail.nextCode('newcomer@example.com'));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Create a passkey' }).click();

  await page.waitForURL(`${server.url}/`);
  await page.getByText('Signed in as newcomer@example.com').waitFor();
  t.is(await page.locator('#amr').textContent(), 'otp');
  t.is(await page.locator('#acr').textContent(), '0');

  // "Sign in again" asks for a fresh login; the passkey answers through autofill.
  await page.getByRole('link', { name: 'Sign in again' }).click();
  await page.waitForURL(`${server.url}/`);
  await page.locator('#amr', { hasText: 'pop' }).waitFor();
  t.is(await page.locator('#amr').textContent(), 'hwk, mfa, pop, user');
  t.is(await page.locator('#acr').textContent(), 'phrh');

  // The demo leads to the user's account page, which signs in from the same session.
  await page.getByRole('link', { name: 'Your account: manage your passkeys' }).click();
  await page.waitForURL(`${server.url}/demo/account`);
  await page.getByText('Signed in as newcomer@example.com.').waitFor();
  await page.goto(`${server.url}/`);

  await page.getByRole('link', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${server.url}/`);
  await page.getByRole('link', { name: 'Sign in with Postern' }).waitFor();
  t.pass();
});

test('cancelling a sign-in lands on a page that says so, with a way back to the demo app', async (t) => {
  const { server } = t.context;
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${server.url}/`);
  t.is(
    await page.getByRole('link', { name: 'your account page' }).getAttribute('href'),
    `${server.url}/demo/account`,
  );
  await page.getByRole('link', { name: 'Sign in with Postern' }).click();
  // The page's script shows the first step once it has the state: only then does Cancel do anything.
  await page.getByLabel('Email').waitFor();
  await page.getByRole('button', { name: 'Cancel and return to the app' }).click();
  await page.getByRole('heading', { name: 'Sign-in cancelled' }).waitFor();
  t.true(page.url().startsWith(`${server.url}/callback?error=access_denied`));
  await page.getByRole('link', { name: 'Return to Postern Demo App' }).click();
  await page.waitForURL(`${server.url}/`);
  await page.getByRole('link', { name: 'Sign in with Postern' }).waitFor();
});
