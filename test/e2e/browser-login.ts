/**
 * Shared pieces of the browser tests: a server on PostgreSQL + Redis with an
 * SMTP sink and a stand-in relying app, Chromium, and the user's gestures on
 * the hosted page (sign up, sign in), with openid-client redeeming the code.
 */
import anyTest, { type TestFn } from 'ava';
import * as client from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { type CallbackCatcher, startCallbackCatcher } from '../support/callback-catcher.ts';
import { launchChromium, probeChromium } from '../support/chromium.ts';
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

export interface BrowserWorld {
  server: TestServer;
  mail: MailSink;
  app: CallbackCatcher;
  browser: Browser;
  /** The Redis key prefix of this server's ephemeral store (to make a sign-in expire, say). */
  redisKeyPrefix: string;
  close(): Promise<void>;
}

/** Starts everything; `pools` maps pool ids to files, given the app's redirect URI. */
export async function startBrowserWorld(
  pools: (redirectUri: string) => Record<string, string>,
): Promise<BrowserWorld> {
  const database: TestDatabase = await createTestDatabase();
  const prefix = uniqueKeyPrefix();
  const mail = await startMailSink();
  const app = await startCallbackCatcher();
  const { openStores } = await import('../../src/storage/open-stores.ts');
  const stores = await openStores({
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  await stores.durable.migrate();
  await stores.close();
  const server = await startTestServer({
    pools: pools(app.redirectUri),
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    env: { SMTP_URL: mail.url },
  });
  const browser = await launchChromium();
  return {
    server,
    mail,
    app,
    browser,
    redisKeyPrefix: prefix,
    async close() {
      await browser.close();
      await server.stop();
      await mail.close();
      await app.close();
      await database.drop();
      await deleteKeysWithPrefix(prefix);
    },
  };
}

/**
 * The test function of a browser test file: its tests run only where
 * PostgreSQL, Redis and Chromium answer (see serviceTest), in one world made
 * of `pools`, opened before the first test and closed after the last.
 */
export async function browserTests(
  pools: (redirectUri: string) => Record<string, string>,
): Promise<TestFn<{ world: BrowserWorld }>> {
  const probes = await Promise.all([probePostgres(), probeRedis(), probeChromium()]);
  const test = probes.reduce(
    (fn, probe) => serviceTest(fn, probe),
    anyTest as TestFn<{ world: BrowserWorld }>,
  );
  test.before(async (t) => {
    t.context.world = await startBrowserWorld(pools);
  });
  test.after.always(async (t) => {
    await t.context.world?.close();
  });
  return test;
}

export type Claims = client.IDToken & { amr?: string[]; acr?: string };

/**
 * Starts an authorization request for `clientId` in `page`, lets `act` play
 * the user, and returns the ID token claims the app receives.
 */
export async function authorize(
  world: BrowserWorld,
  page: Page,
  {
    poolId,
    clientId = 'web',
    params = {},
  }: { poolId: string; clientId?: string; params?: Record<string, string> },
  act: () => Promise<void>,
): Promise<Claims> {
  const rp = await client.discovery(
    new URL(world.server.issuer(poolId)),
    clientId,
    undefined,
    client.None(),
    {
      execute: [client.allowInsecureRequests],
    },
  );
  client.enableNonRepudiationChecks(rp);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(rp, {
    redirect_uri: world.app.redirectUri,
    scope: 'openid email',
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...params,
  });
  await page.goto(url.href);
  await act();
  const callback = await world.app.next().catch(async (error: Error) => {
    await page.screenshot({ path: '/tmp/e2e-failure.png' });
    throw new Error(
      `${error.message}; the page shows: ${((await page.locator('main').textContent()) ?? '').slice(0, 400)}`,
    );
  });
  // Let the navigation to the app finish, so the next one starts from a settled page.
  await page.waitForURL((current) => current.href.startsWith(world.app.redirectUri));
  const tokens = await client.authorizationCodeGrant(rp, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return tokens.claims() as Claims;
}

/** The user's part of a sign-up on the hosted page: email, code from the mailbox, passkey. */
export async function signUpOnPage(
  world: BrowserWorld,
  page: Page,
  email: string,
  passkeyName?: string,
): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByText('Create a passkey to finish setting up your account').waitFor();
  if (passkeyName) await page.getByLabel('Name this passkey (optional)').fill(passkeyName);
  await page.getByRole('button', { name: 'Create a passkey' }).click();
}

/** Keeps the page from starting passkey autofill, as in a browser without it. */
export async function withoutAutofill(page: Page): Promise<void> {
  await page.addInitScript(() => {
    PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });
}
