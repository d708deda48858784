/**
 * The hosted account page in a real browser: it signs in through the pool's
 * own client (from the existing session, no prompt), then the user renames,
 * adds and removes passkeys, changes the password and makes new recovery
 * codes; the changes hold when the user next signs in to an app.
 */
import anyTest, { type TestFn } from 'ava';
import type { Page } from 'playwright-core';
import { addVirtualAuthenticator, probeChromium } from '../support/chromium.ts';
import { probePostgres, probeRedis, serviceTest } from '../support/services.ts';
import { authorize, type BrowserWorld, startBrowserWorld, withoutAutofill } from './browser-login.ts';

const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'a brand new passphrase';

const poolFile = (redirectUri: string) => `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [password, passkey]
  second_factor: [passkey, recovery_code]
  second_factor_required: when_enrolled
  password:
    argon2: { memory_kib: 8192, iterations: 1 }
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${redirectUri}"]
    scope: openid email
    first_party: true
`;

const probes = await Promise.all([probePostgres(), probeRedis(), probeChromium()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<{ world: BrowserWorld }>);

test.before(async (t) => {
  t.context.world = await startBrowserWorld((redirectUri) => ({ acme: poolFile(redirectUri) }));
});
test.after.always(async (t) => {
  await t.context.world?.close();
});

async function signUpWithPassword(world: BrowserWorld, page: Page, email: string): Promise<string[]> {
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'New here? Create an account' }).click();
  await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Use a password instead' }).click();
  await page.getByLabel('Choose a password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText('Sign in faster next time').waitFor();
  await page.getByLabel('Name this passkey (optional)').fill('Work laptop');
  await page.getByRole('button', { name: 'Create a passkey' }).click();
  await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
  const codes = await page.locator('#recovery-code-list li').allTextContents();
  await page.getByRole('button', { name: 'I have saved these codes' }).click();
  return codes;
}

test.serial(
  'the account page manages passkeys, the password and recovery codes with the session’s sign-in',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    await withoutAutofill(page);
    const laptop = await addVirtualAuthenticator(page);
    let firstCodes: string[] = [];
    const signedUp = await authorize(world, page, { poolId: 'acme' }, async () => {
      firstCodes = await signUpWithPassword(world, page, 'ada@acme.example');
    });

    // Signed in to an app a moment ago: the account page signs in from that session, without a prompt.
    await page.goto(`${world.server.url}/acme/account`);
    await page.getByText('Signed in as ada@acme.example.').waitFor();
    t.is(new URL(page.url()).search, '', 'the code and state are gone from the address bar');
    const list = page.locator('#passkey-list li');
    t.deepEqual(await list.locator('strong').allTextContents(), ['Work laptop']);
    await page.getByText('You have 10 unused recovery codes.').waitFor();

    await page.getByRole('button', { name: 'Rename Work laptop' }).click();
    await page.getByLabel('New name for “Work laptop”').fill('Old laptop');
    await page.getByRole('button', { name: 'Save name' }).click();
    await page.getByText('The passkey was renamed.').waitFor();
    t.deepEqual(await list.locator('strong').allTextContents(), ['Old laptop']);

    // The laptop already holds a passkey for this account: the browser refuses a second one.
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.getByRole('alert').getByText('This device already holds one of your passkeys.').waitFor();

    // A new device: add its passkey, then remove the old one.
    await laptop.remove();
    const phone = await addVirtualAuthenticator(page);
    await page.getByLabel('Name the new passkey (optional)').fill('Phone');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.getByText('“Phone” was added.').waitFor();
    t.deepEqual(await list.locator('strong').allTextContents(), ['Old laptop', 'Phone']);

    // Another browser signs in with a copy of the phone's passkey; removing a passkey signs it out, and the page says so.
    const elsewhere = await world.browser.newContext();
    const other = await elsewhere.newPage();
    await withoutAutofill(other);
    const copy = await addVirtualAuthenticator(other);
    const { credentials } = await phone.cdp.send('WebAuthn.getCredentials', { authenticatorId: phone.id });
    await copy.cdp.send('WebAuthn.addCredential', { authenticatorId: copy.id, credential: credentials[0]! });
    await authorize(world, other, { poolId: 'acme' }, async () => {
      await other.getByRole('button', { name: 'Sign in with a passkey' }).click();
    });
    // The phone carries on from the copy's signature counter, as one synced passkey would.
    const [used] = (await copy.cdp.send('WebAuthn.getCredentials', { authenticatorId: copy.id })).credentials;
    await phone.cdp.send('WebAuthn.clearCredentials', { authenticatorId: phone.id });
    await phone.cdp.send('WebAuthn.addCredential', { authenticatorId: phone.id, credential: used! });
    await elsewhere.close();

    await page.getByRole('button', { name: 'Remove Old laptop' }).click();
    await page.getByRole('button', { name: 'Confirm removing Old laptop' }).click();
    await page.getByText('“Old laptop” was removed.').waitFor();
    t.regex(
      (await page.locator('#status').textContent()) ?? '',
      /was removed\. Your account was signed out on one other browser, and one app will ask you to sign in again\.$/,
    );
    t.deepEqual(await list.locator('strong').allTextContents(), ['Phone']);

    await page.getByLabel('Current password').fill('not my password');
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('alert').getByText('Your current password is not correct.').waitFor();
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Your password was changed.').waitFor();

    // New codes end the old ones: the page asks first, and "Keep my codes" changes nothing.
    await page.getByRole('button', { name: 'Make new recovery codes' }).click();
    t.is(await page.evaluate(() => document.activeElement?.id), 'new-codes-yes');
    await page.getByRole('button', { name: 'Keep my codes' }).click();
    t.is(await page.evaluate(() => document.activeElement?.id), 'new-codes-button');
    t.false(await page.locator('#new-codes').isVisible(), 'no codes were made');
    await page.getByRole('button', { name: 'Make new recovery codes' }).click();
    await page.getByRole('button', { name: 'Yes, make new codes' }).click();
    await page.getByText('New recovery codes were made; the old ones no longer work.').waitFor();
    const newCodes = await page.locator('#new-code-list li').allTextContents();
    t.is(newCodes.length, 10);
    t.false(newCodes.some((code) => firstCodes.includes(code)));
    await page.getByRole('button', { name: 'Copy the codes' }).waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download them as a text file' }).click(),
    ]);
    t.is(download.suggestedFilename(), 'acme-recovery-codes.txt');

    // What the user changed holds at the next sign-in to the app: the new password, then the phone.
    const signedIn = await authorize(
      world,
      page,
      { poolId: 'acme', params: { prompt: 'login' } },
      async () => {
        await page.getByLabel('Email').fill('ada@acme.example');
        await page.getByRole('button', { name: 'Continue' }).click();
        await page.getByRole('button', { name: 'Use your password' }).click();
        await page.getByLabel('Password').fill(NEW_PASSWORD);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('button', { name: 'Use your passkey' }).click();
      },
    );
    t.is(signedIn.sub, signedUp.sub);
    t.deepEqual(signedIn.amr, ['hwk', 'mfa', 'pop', 'pwd', 'user']);
    t.is((await phone.credentials()).length, 1);

    // Signing out of the account page ends the session too.
    await page.goto(`${world.server.url}/acme/account`);
    await page.getByText('Signed in as ada@acme.example.').waitFor();
    const token = await page.evaluate(() =>
      Object.entries(sessionStorage)
        .find(([key]) => key.endsWith(':token'))
        ?.at(1),
    );
    const summary = () =>
      fetch(`${world.server.url}/acme/api/self`, { headers: { authorization: `Bearer ${token}` } });
    t.is((await summary()).status, 200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign out?' }).waitFor();
    t.is(
      (await page.locator('main p:not(.pool)').first().textContent())?.trim(),
      'Do you want to sign out of acme on this device?',
      'the account page is not "an app asking to sign you out"',
    );
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are signed out.').waitFor();
    t.is((await summary()).status, 401, 'signing out revoked the page’s token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Email').waitFor();
    await page.close();
  },
);
