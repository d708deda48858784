/**
 * An authenticator app in a real browser: a user who signed up by email code
 * sets one up on the account page (scanning is replaced by reading the key
 * the page shows), is asked for its code at the next sign-in to an app, and,
 * once they add a passkey on the account page, is asked for the passkey
 * instead (passkey_supersedes_totp).
 */
import type { Page } from 'playwright-core';
import { totpCodeAt } from '../../src/factors/totp/totp-codes.ts';
import { addVirtualAuthenticator } from '../support/chromium.ts';
import { authorize, type BrowserWorld, browserTests, withoutAutofill } from './browser-login.ts';

const poolFile = (redirectUri: string) => `
display_name: Acme
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [email_otp, passkey]
  second_factor: [passkey, recovery_code, totp]
  second_factor_required: when_enrolled
enrollment:
  offer_passkey: false
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${redirectUri}"]
    scope: openid email
    first_party: true
`;

const test = await browserTests((redirectUri) => ({ acme: poolFile(redirectUri) }));

/** The email-code first step on the hosted page. */
async function emailCodeStep(world: BrowserWorld, page: Page, email: string) {
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
  await page.getByRole('button', { name: 'Continue' }).click();
}

test('an authenticator app set up on the account page is asked for at sign-in, until a passkey supersedes it', async (t) => {
  const { world } = t.context;
  const page = await world.browser.newPage();
  await withoutAutofill(page);
  const email = 'ada@acme.example';
  const signedUp = await authorize(world, page, { poolId: 'acme' }, async () => {
    await emailCodeStep(world, page, email);
    await page.getByRole('button', { name: 'Not now' }).click();
  });

  await page.goto(`${world.server.url}/acme/account`);
  await page.getByRole('heading', { name: 'Authenticator app' }).waitFor();
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await page.getByLabel('Code from the app').waitFor();
  const secret = (await page.locator('#totp-secret').textContent()) ?? '';
  t.regex(secret, /^[A-Z2-7]{32}$/);
  t.true(await page.getByRole('img', { name: 'QR code for your authenticator app' }).isVisible());
  await page.getByLabel('Code from the app').fill(totpCodeAt(secret, Date.now()));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.getByText('Your authenticator app is set up.').waitFor();

  const withApp = await authorize(world, page, { poolId: 'acme', params: { prompt: 'login' } }, async () => {
    await emailCodeStep(world, page, email);
    await page.getByRole('button', { name: 'Use your authenticator app' }).click();
    // The enrolment spent the current code; the next one is within the window.
    await page.getByLabel('Authenticator app code').fill(totpCodeAt(secret, Date.now() + 30_000));
    await page.getByRole('button', { name: 'Continue' }).click();
  });
  t.is(withApp.sub, signedUp.sub);
  t.deepEqual(withApp.amr, ['mfa', 'otp']);

  // A passkey from the account page: from now on it is the second step, not the app.
  await page.goto(`${world.server.url}/acme/account`);
  await addVirtualAuthenticator(page);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page
    .getByRole('heading', { name: 'Save your recovery codes' })
    .or(page.getByText('was added'))
    .first()
    .waitFor();
  const withPasskey = await authorize(
    world,
    page,
    { poolId: 'acme', params: { prompt: 'login' } },
    async () => {
      await emailCodeStep(world, page, email);
      await page.getByRole('button', { name: 'Use your passkey' }).waitFor();
      t.false(await page.getByRole('button', { name: 'Use your authenticator app' }).isVisible());
      await page.getByRole('button', { name: 'Use your passkey' }).click();
    },
  );
  t.is(withPasskey.sub, signedUp.sub);
  t.true(withPasskey.amr?.includes('pop'));
  await page.close();
});
