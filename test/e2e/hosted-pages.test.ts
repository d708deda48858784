/**
 * The hosted sign-in page as a user notices it (issue 8, items 15, 17, 18):
 * focus follows each step and error, a refused field is marked and described
 * by its error, the code step survives a reload and "Send a new code" says
 * what happened, sign-up says so in its heading, recovery codes can be copied
 * and downloaded, a passkey step-up without a passkey explains itself, and a
 * sign-in that expired says so with a way back to the app.
 */
import { randomBytes } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import type { Page } from 'playwright-core';
import { addVirtualAuthenticator, probeChromium } from '../support/chromium.ts';
import { deleteKeysWithPrefix, probePostgres, probeRedis, serviceTest } from '../support/services.ts';
import { authorize, type BrowserWorld, startBrowserWorld, withoutAutofill } from './browser-login.ts';

const rp = `passkeys:\n  rp:\n    id: localhost\n    origins: ["\${PUBLIC_URL}"]\n`;
const client = (redirectUri: string) => `
clients:
  - client_id: web
    client_name: Acme Shop
    token_endpoint_auth_method: none
    redirect_uris: ["${redirectUri}"]
    scope: openid email
    first_party: true
`;

const probes = await Promise.all([probePostgres(), probeRedis(), probeChromium()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<{ world: BrowserWorld }>);

test.before(async (t) => {
  t.context.world = await startBrowserWorld((redirectUri) => ({
    shop: `${rp}authentication:\n  first_factor: [passkey, email_otp]\n${client(redirectUri)}`,
    strict: `${rp}authentication:\n  first_factor: [password]\n  second_factor: [passkey, recovery_code]\n  second_factor_required: always\n  password:\n    min_length: 12\n    argon2: { memory_kib: 8192, iterations: 1 }\n${client(redirectUri)}`,
  }));
});
test.after.always(async (t) => {
  await t.context.world?.close();
});

/** The id of the element that has the focus. */
const focused = (page: Page) => page.evaluate(() => document.activeElement?.id ?? '');

/** Opens the hosted page for a new authorization request, without finishing it. */
async function startSignIn(
  world: BrowserWorld,
  page: Page,
  poolId: string,
  params: Record<string, string> = {},
) {
  const url = new URL(`${world.server.issuer(poolId)}/auth`);
  url.search = new URLSearchParams({
    client_id: 'web',
    response_type: 'code',
    scope: 'openid email',
    redirect_uri: world.app.redirectUri,
    state: randomBytes(8).toString('hex'),
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...params,
  }).toString();
  await page.goto(url.href);
}

/** Signs up in the shop with an email code and no passkey ("Not now"). */
async function signUpWithoutPasskey(world: BrowserWorld, page: Page, email: string) {
  return authorize(world, page, { poolId: 'shop' }, async () => {
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'Email me a code' }).click();
    await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'Not now' }).click();
  });
}

test.serial(
  'focus follows the steps; a wrong code is marked on its field; the code step survives a reload; a new code says it was sent',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    await withoutAutofill(page);
    const email = 'ada@shop.example';
    await authorize(world, page, { poolId: 'shop' }, async () => {
      await page.getByLabel('Email').waitFor();
      t.is(await focused(page), 'email', 'the first field has the focus');
      await page.getByLabel('Email').fill(email);
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('button', { name: 'Email me a code' }).waitFor();
      t.is(await focused(page), 'heading', 'a step without a field: its heading has the focus');
      await page.getByRole('button', { name: 'Email me a code' }).click();
      const code = page.getByLabel('Code', { exact: true });
      await code.waitFor();
      t.is(await focused(page), 'code');

      await code.fill('000000');
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.locator('#code[aria-invalid="true"]').waitFor();
      t.is(await code.getAttribute('aria-describedby'), 'error', 'the field is described by its error');
      t.not(await page.locator('#error').textContent(), '');
      t.is(await focused(page), 'code', 'the refused field has the focus back');
      await code.fill('1');
      t.is(await code.getAttribute('aria-invalid'), null, 'a corrected field is no longer marked');

      // A reload (or a browser that restores the tab) keeps the code the user is waiting for.
      await page.reload();
      await code.waitFor();
      t.true(await page.locator('#step-code').isVisible());
      t.is(await page.locator('#code-email').textContent(), email);
      t.is(await page.locator('#error').textContent(), '', 'nothing stale from before the reload');
      t.is(await focused(page), 'code');

      await page.getByRole('button', { name: 'Send a new code' }).click();
      await page.locator('#status', { hasText: 'We sent a new code' }).waitFor();
      await world.mail.nextCode(email); // the first code, replaced by the new one
      await code.fill(await world.mail.nextCode(email));
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('heading', { name: 'Create your account' }).waitFor();
      t.is(await page.locator('#status').textContent(), '', 'the status of the code step is gone');
      t.is(await focused(page), 'passkey-name');
      await page.getByRole('button', { name: 'Not now' }).click();
    });
    await page.close();
  },
);

test.serial('"Send a new code" says when the user may ask again once they asked too often', async (t) => {
  const { world } = t.context;
  const page = await world.browser.newPage();
  await withoutAutofill(page);
  await startSignIn(world, page, 'shop');
  await page.getByLabel('Email').fill('bob@shop.example');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await world.mail.nextCode('bob@shop.example');
  const resend = page.getByRole('button', { name: 'Send a new code' });
  // Five codes per email and browser in 15 minutes: the sixth is refused.
  for (let sent = 1; sent < 5; sent++) {
    await resend.click();
    await world.mail.nextCode('bob@shop.example');
  }
  await resend.click();
  await page.locator('#error', { hasText: 'You can ask for a new code in' }).waitFor();
  t.regex((await page.locator('#error').textContent()) ?? '', /in 1[0-5] minutes \(at /);
  t.true(await resend.isDisabled(), 'the button waits as long as the server said');
  t.is(await focused(page), 'code', 'the user can still type the code they have');
  await page.close();
});

test.serial(
  'Cancel after the sign-in expired says so and links back to the app; so does the page reloaded',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    await withoutAutofill(page);
    await startSignIn(world, page, 'shop');
    await page.getByLabel('Email').waitFor();
    const uid = new URL(page.url()).pathname.split('/').at(-1);
    t.is(await deleteKeysWithPrefix(`${world.redisKeyPrefix}oidc:shop:Interaction:${uid}`), 1);
    const appHome = `${new URL(world.app.redirectUri).origin}/`;

    await page.getByRole('button', { name: 'Cancel and return to the app' }).click();
    await page.getByRole('heading', { name: 'This sign-in has expired' }).waitFor();
    t.is(await focused(page), 'heading');
    const back = page.getByRole('link', { name: 'Return to Acme Shop' });
    t.is(await back.getAttribute('href'), appHome);
    t.false(await page.getByRole('button', { name: 'Cancel and return to the app' }).isVisible());

    const reloaded = await page.reload();
    t.is(reloaded?.status(), 400);
    await page.getByRole('heading', { name: 'This sign-in has expired' }).waitFor();
    t.is(await page.locator('.pool').textContent(), 'shop', 'the page names the pool');
    t.is(await page.getByRole('link', { name: 'Return to Acme Shop' }).getAttribute('href'), appHome);
    await page.close();
  },
);

test.serial(
  'a step-up for a user without a passkey says why, offers no sign-up, and creates the passkey; Cancel ends at the app',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    await withoutAutofill(page);
    await addVirtualAuthenticator(page);
    const email = 'cy@shop.example';
    const signedUp = await signUpWithoutPasskey(world, page, email);

    await startSignIn(world, page, 'shop', { acr_values: 'phr' });
    await page.getByRole('heading', { name: 'Confirm it’s you' }).waitFor();
    await page.getByText('Acme Shop asks you to sign in with a passkey. You have none yet').waitFor();
    t.is(await page.getByRole('button', { name: 'New here? Create an account' }).count(), 0);
    await page.getByRole('button', { name: 'Cancel and return to the app' }).click();
    const cancelled = await world.app.next();
    t.is(cancelled.searchParams.get('error'), 'access_denied');
    await page.waitForURL((url) => url.href.startsWith(world.app.redirectUri));

    const steppedUp = await authorize(
      world,
      page,
      { poolId: 'shop', params: { acr_values: 'phr' } },
      async () => {
        await page.getByRole('heading', { name: 'Confirm it’s you' }).waitFor();
        await page.getByRole('button', { name: 'Email me a code' }).click();
        await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
        await page.getByRole('button', { name: 'Continue' }).click();
        await page.getByRole('heading', { name: 'Create a passkey' }).waitFor();
        t.is(await page.getByRole('button', { name: 'Not now' }).isVisible(), false, 'the passkey is needed');
        await page.getByRole('button', { name: 'Create a passkey' }).click();
        await page.getByRole('heading', { name: 'Sign in with a passkey' }).waitFor();
        await page.getByText('Acme Shop asks you to sign in with a passkey.').waitFor();
        await page.getByRole('button', { name: 'Use your passkey' }).click();
      },
    );
    t.is(steppedUp.sub, signedUp.sub);
    t.is(steppedUp.acr, 'phr');
    await page.close();
  },
);

test.serial(
  'sign-up says "Create your account", hints the pool’s password length, and the recovery codes can be copied and downloaded',
  async (t) => {
    const { world } = t.context;
    const context = await world.browser.newContext();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: world.server.url });
    const page = await context.newPage();
    await withoutAutofill(page);
    await addVirtualAuthenticator(page);
    const email = 'dee@strict.example';
    let codes: string[] = [];
    await authorize(world, page, { poolId: 'strict' }, async () => {
      await page.getByLabel('Email').fill(email);
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('heading', { name: 'Sign in to Acme Shop' }).waitFor();
      await page.getByRole('button', { name: 'New here? Create an account' }).click();
      await page.getByLabel('Code', { exact: true }).waitFor();
      t.is(await page.locator('h1').textContent(), 'Create your account');
      // Where codes only prove a sign-up's email, a reload keeps the code step too.
      await page.reload();
      await page.getByLabel('Code', { exact: true }).waitFor();
      t.is(await page.locator('h1').textContent(), 'Create your account');
      await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
      await page.getByRole('button', { name: 'Continue' }).click();

      const password = page.getByLabel('Choose a password');
      await password.waitFor();
      t.is(await page.locator('h1').textContent(), 'Create your account');
      t.is(await focused(page), 'password');
      t.regex((await page.locator('#password-hint').textContent()) ?? '', /at least 12 characters/);
      await password.fill('eleven char');
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.locator('#password[aria-invalid="true"]').waitFor();
      t.is(await password.getAttribute('aria-describedby'), 'password-hint error');
      await password.fill('correct horse battery');
      await page.getByRole('button', { name: 'Create account' }).click();

      await page.getByRole('heading', { name: 'Add a passkey' }).waitFor();
      await page.getByRole('button', { name: 'Create a passkey' }).click();
      await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
      t.is(await focused(page), 'heading');
      codes = await page.locator('#recovery-code-list li').allTextContents();
      t.is(codes.length, 10);

      await page.getByRole('button', { name: 'Copy the codes' }).click();
      await page.locator('#status', { hasText: 'The codes were copied' }).waitFor();
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      for (const code of codes) t.true(copied.includes(code));

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Download them as a text file' }).click(),
      ]);
      t.is(download.suggestedFilename(), 'strict-recovery-codes.txt');
      const chunks: Buffer[] = [];
      for await (const chunk of await download.createReadStream()) chunks.push(chunk as Buffer);
      const file = Buffer.concat(chunks).toString('utf8');
      t.true(file.includes(email));
      t.deepEqual(file.trim().split('\n').slice(-10), codes);
      await page.getByRole('button', { name: 'I have saved these codes' }).click();
    });
    await context.close();
  },
);
