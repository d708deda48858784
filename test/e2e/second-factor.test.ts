/**
 * Second factors, recovery and step-up in a real browser (Chromium's virtual
 * authenticator, openid-client as the relying app).
 */
import anyTest, { type TestFn } from 'ava';
import type { Page } from 'playwright-core';
import { addVirtualAuthenticator, probeChromium } from '../support/chromium.ts';
import { probePostgres, probeRedis, serviceTest } from '../support/services.ts';
import { authorize, type BrowserWorld, startBrowserWorld, withoutAutofill } from './browser-login.ts';

const PASSWORD = 'correct horse battery';

const client = (redirectUri: string) => `
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${redirectUri}"]
    scope: openid email
    first_party: true
`;
const rp = `passkeys:\n  rp:\n    id: localhost\n    origins: ["\${PUBLIC_URL}"]\n`;
const fastHashing = '  password:\n    argon2: { memory_kib: 8192, iterations: 1 }\n';

const probes = await Promise.all([probePostgres(), probeRedis(), probeChromium()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<{ world: BrowserWorld }>);

test.before(async (t) => {
  t.context.world = await startBrowserWorld((redirectUri) => ({
    strict: `${rp}authentication:\n  first_factor: [password]\n  second_factor: [passkey, recovery_code]\n  second_factor_required: always\n${fastHashing}${client(redirectUri)}`,
    enrolled: `${rp}authentication:\n  first_factor: [email_otp]\n  second_factor: [passkey, recovery_code]\n  second_factor_required: when_enrolled\n${client(redirectUri)}`,
    mfa: `${rp}authentication:\n  first_factor: [passkey, email_otp]\n  second_factor_required: always\n${client(redirectUri)}`,
    relaxed: `${rp}authentication:\n  first_factor: [password, passkey]\n  second_factor_required: never\n${fastHashing}${client(redirectUri)}`,
  }));
});
test.after.always(async (t) => {
  await t.context.world?.close();
});

async function proveEmail(world: BrowserWorld, page: Page, email: string, { signUp = false } = {}) {
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page
    .getByRole('button', { name: signUp ? 'New here? Create an account' : 'Email me a code' })
    .click();
  await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
  await page.getByRole('button', { name: 'Continue' }).click();
}

async function signInWithPassword(page: Page, email: string) {
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Use your password' }).click();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Reads the recovery codes off the page and confirms they were saved. */
async function saveRecoveryCodes(page: Page): Promise<string[]> {
  await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
  const codes = await page.locator('#recovery-code-list li').allTextContents();
  await page.getByRole('button', { name: 'I have saved these codes' }).click();
  return codes;
}

test.serial(
  'password then passkey, required: sign-up enrols the passkey in the same interaction; sign-in needs both; a recovery code replaces a lost passkey',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    await withoutAutofill(page);
    const lost = await addVirtualAuthenticator(page);
    let codes: string[] = [];

    const signedUp = await authorize(world, page, { poolId: 'strict' }, async () => {
      await proveEmail(world, page, 'ada@acme.example', { signUp: true });
      await page.getByLabel('Choose a password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByText('Your account needs a passkey as a second step').waitFor();
      await page.getByRole('button', { name: 'Create a passkey' }).click();
      codes = await saveRecoveryCodes(page);
    });
    t.is(codes.length, 10);
    t.true(signedUp.amr?.includes('mfa'));

    const signedIn = await authorize(
      world,
      page,
      { poolId: 'strict', params: { prompt: 'login' } },
      async () => {
        await signInWithPassword(page, 'ada@acme.example');
        await page.getByText('Confirm it’s you with a second step.').waitFor();
        await page.getByRole('button', { name: 'Use your passkey' }).click();
      },
    );
    t.deepEqual(signedIn.amr, ['hwk', 'mfa', 'pop', 'pwd', 'user']);
    t.is(signedIn.sub, signedUp.sub);

    // The passkey is lost: a recovery code signs in, and the user replaces it.
    await lost.remove();
    const replacement = await addVirtualAuthenticator(page);
    const recovered = await authorize(
      world,
      page,
      { poolId: 'strict', params: { prompt: 'login' } },
      async () => {
        await signInWithPassword(page, 'ada@acme.example');
        await page.getByRole('button', { name: 'Use a recovery code' }).click();
        await page.getByLabel('Recovery code').fill(codes[0] ?? '');
        await page.getByRole('button', { name: 'Continue' }).click();
        await page.getByText('Recovery code accepted. You have 9 left.').waitFor();
        await page.getByLabel('Name this passkey (optional)').fill('New laptop');
        await page.getByRole('button', { name: 'Create a passkey' }).click();
        await page.getByRole('listitem').filter({ hasText: 'New laptop' }).waitFor();
        const oldOne = page.getByRole('listitem').filter({ hasNotText: 'New laptop' });
        await oldOne.getByRole('button', { name: /^Remove/ }).click();
        await page.getByRole('listitem').filter({ hasNotText: 'New laptop' }).waitFor({ state: 'detached' });
        await page.getByRole('button', { name: 'Done' }).click();
      },
    );
    t.deepEqual(recovered.amr, ['mfa', 'otp', 'pwd'], 'a recovery sign-in says so');
    t.is(recovered.acr, '0');
    const user = await world.server.runtime.durable.users.findByEmail('strict', 'ada@acme.example');
    const passkeys = await world.server.runtime.durable.passkeys.listByUser('strict', user?.id ?? '');
    t.deepEqual(
      passkeys.map((passkey) => passkey.name),
      ['New laptop'],
    );

    const afterwards = await authorize(
      world,
      page,
      { poolId: 'strict', params: { prompt: 'login' } },
      async () => {
        await signInWithPassword(page, 'ada@acme.example');
        await page.getByRole('button', { name: 'Use your passkey' }).click();
      },
    );
    t.deepEqual(afterwards.amr, ['hwk', 'mfa', 'pop', 'pwd', 'user']);
    t.is((await replacement.credentials()).length, 1);
    await page.close();
  },
);

test.serial(
  'email code then passkey, when enrolled: the offered passkey becomes the second factor',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    await withoutAutofill(page);
    await addVirtualAuthenticator(page);
    await authorize(world, page, { poolId: 'enrolled' }, async () => {
      await proveEmail(world, page, 'ben@acme.example');
      await page.getByRole('button', { name: 'Not now' }).click();
    });
    const offered = await authorize(
      world,
      page,
      { poolId: 'enrolled', params: { prompt: 'login' } },
      async () => {
        await proveEmail(world, page, 'ben@acme.example');
        // Skipped a moment ago: not offered again (ask_again_after).
      },
    );
    t.deepEqual(offered.amr, ['otp']);
    await world.server.runtime.durable.users
      .findByEmail('enrolled', 'ben@acme.example')
      .then((user) =>
        world.server.runtime.durable.users.recordEnrollPrompt('enrolled', user?.id ?? '', new Date(0)),
      );

    await authorize(world, page, { poolId: 'enrolled', params: { prompt: 'login' } }, async () => {
      await proveEmail(world, page, 'ben@acme.example');
      await page.getByText('Sign in faster next time').waitFor();
      await page.getByRole('button', { name: 'Create a passkey' }).click();
      await saveRecoveryCodes(page);
    });
    const twoFactors = await authorize(
      world,
      page,
      { poolId: 'enrolled', params: { prompt: 'login' } },
      async () => {
        await proveEmail(world, page, 'ben@acme.example');
        await page.getByRole('button', { name: 'Use your passkey' }).click();
      },
    );
    t.deepEqual(twoFactors.amr, ['hwk', 'mfa', 'otp', 'pop', 'user']);
    t.is(twoFactors.acr, 'phrh');
    await page.close();
  },
);

test.serial('a passkey with user verification satisfies a required second factor on its own', async (t) => {
  const { world } = t.context;
  const page = await world.browser.newPage();
  await withoutAutofill(page);
  await addVirtualAuthenticator(page);
  await authorize(world, page, { poolId: 'mfa' }, async () => {
    await proveEmail(world, page, 'cy@acme.example');
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await saveRecoveryCodes(page);
  });
  const signedIn = await authorize(world, page, { poolId: 'mfa', params: { prompt: 'login' } }, async () => {
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  });
  t.deepEqual(signedIn.amr, ['hwk', 'mfa', 'pop', 'user'], 'no second prompt');
  await page.close();
});

test.serial('acr_values=phr steps a password session up to a passkey, with a fresh auth_time', async (t) => {
  const { world } = t.context;
  const page = await world.browser.newPage();
  await withoutAutofill(page);
  await addVirtualAuthenticator(page);
  await authorize(world, page, { poolId: 'relaxed' }, async () => {
    await proveEmail(world, page, 'dee@acme.example', { signUp: true });
    await page.getByRole('button', { name: 'Use a password instead' }).click();
    await page.getByLabel('Choose a password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    // The page first tries conditional create, which the virtual authenticator leaves pending;
    // the button must take over from it.
    await page.getByText('Sign in faster next time').waitFor();
    await page.getByRole('button', { name: 'Create a passkey' }).click();
  });
  const user = await world.server.runtime.durable.users.findByEmail('relaxed', 'dee@acme.example');
  t.is((await world.server.runtime.durable.passkeys.listByUser('relaxed', user?.id ?? '')).length, 1);
  const metrics = await (await fetch(`${world.server.url}/metrics`)).text();
  t.regex(metrics, /postern_passkey_offers_total\{pool="relaxed",outcome="shown"\} 1/);
  t.regex(metrics, /postern_passkey_offers_total\{pool="relaxed",outcome="accepted"\} 1/);
  const password = await authorize(world, page, { poolId: 'relaxed', params: { prompt: 'login' } }, () =>
    signInWithPassword(page, 'dee@acme.example'),
  );
  t.deepEqual(password.amr, ['pwd']);
  t.is(password.acr, '0');

  await new Promise((resolve) => setTimeout(resolve, 1100));
  const steppedUp = await authorize(
    world,
    page,
    { poolId: 'relaxed', params: { acr_values: 'phr' } },
    async () => {
      await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    },
  );
  t.is(steppedUp.sub, password.sub);
  t.is(steppedUp.acr, 'phr', 'the class asked for, which the device-bound passkey meets');
  t.deepEqual(steppedUp.amr, ['hwk', 'mfa', 'pop', 'user']);
  t.true((steppedUp.auth_time ?? 0) > (password.auth_time ?? 0));
  await page.close();
});
