/**
 * A smart pool in a real browser: a new user signs up (email code, then a
 * passkey), then signs in usernameless, by passkey autofill and by the
 * "Sign in with a passkey" button; openid-client is the relying app and
 * checks the ID token's sub, amr, acr and auth_time.
 */
import anyTest, { type TestFn } from 'ava';
import { addVirtualAuthenticator, probeChromium } from '../support/chromium.ts';
import { probePostgres, probeRedis, serviceTest } from '../support/services.ts';
import {
  authorize,
  type BrowserWorld,
  signUpOnPage,
  startBrowserWorld,
  withoutAutofill,
} from './browser-login.ts';

const poolFile = (redirectUri: string) => `
display_name: Acme
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [passkey, email_otp]
clients:
  - client_id: web
    client_name: Acme Web
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

test.serial(
  'a new user signs up with an email code and a passkey, then signs in usernameless by autofill and by button',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    const authenticator = await addVirtualAuthenticator(page);
    const email = 'ada@acme.example';

    const signUp = await authorize(world, page, { poolId: 'acme' }, () =>
      signUpOnPage(world, page, email, 'Test laptop'),
    );
    t.deepEqual(signUp.amr, ['otp'], 'sign-up proved the email; creating a passkey is not a passkey sign-in');
    t.is(signUp.acr, '0');

    const [credential] = await authenticator.credentials();
    t.true(credential?.isResidentCredential, 'a smart pool makes a discoverable credential');
    const { durable } = world.server.runtime;
    const user = await durable.users.findByEmail('acme', email);
    t.is(signUp.sub, user?.id ?? 'missing');
    t.true(user?.emailVerified);
    const passkeys = await durable.passkeys.listByUser('acme', user?.id ?? '');
    t.deepEqual(
      passkeys.map((passkey) => passkey.name),
      ['Test laptop'],
    );
    t.is(
      passkeys[0]?.credentialId,
      Buffer.from(credential?.credentialId ?? '', 'base64').toString('base64url'),
    );

    // Passkey autofill: conditional mediation starts on page load; Chromium's
    // virtual authenticator answers it without a click, as a user picking the
    // passkey from the email field's suggestions would.
    const before = Math.floor(Date.now() / 1000);
    const autofill = await authorize(
      world,
      page,
      { poolId: 'acme', params: { prompt: 'login' } },
      async () => {},
    );
    t.is(autofill.sub, signUp.sub);
    t.deepEqual(autofill.amr, ['hwk', 'mfa', 'pop', 'user']);
    t.is(autofill.acr, 'phrh');
    t.true((autofill.auth_time ?? 0) >= before, 'auth_time is the time of this sign-in');

    // The button, in a browser without passkey autofill.
    await withoutAutofill(page);
    const button = await authorize(world, page, { poolId: 'acme', params: { prompt: 'login' } }, async () => {
      await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    });
    t.is(button.sub, signUp.sub);
    t.deepEqual(button.amr, ['hwk', 'mfa', 'pop', 'user']);
    t.is(button.acr, 'phrh');
    const [used] = await durable.passkeys.listByUser('acme', user?.id ?? '');
    t.truthy(used?.lastUsedAt, 'the passkey records its last use');
    await page.close();
  },
);

test.serial(
  'passkey autofill waits while the user types their email, then gives way, without an error, to the way they pick',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    const authenticator = await addVirtualAuthenticator(page);
    const email = 'lin@acme.example';
    await authorize(world, page, { poolId: 'acme' }, () => signUpOnPage(world, page, email));

    // The user does not pick the suggestion: the autofill request stays open while they type.
    await authenticator.setPresence(false);
    const claims = await authorize(world, page, { poolId: 'acme', params: { prompt: 'login' } }, async () => {
      await page.getByLabel('Email').fill(email);
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('button', { name: 'Use your passkey' }).waitFor();
      t.is(await page.locator('#error').textContent(), '', 'the aborted autofill says nothing');
      await authenticator.setPresence(true);
      await page.getByRole('button', { name: 'Use your passkey' }).click();
    });
    t.deepEqual(claims.amr, ['hwk', 'mfa', 'pop', 'user']);
    await page.close();
  },
);

test.serial(
  'the hosted page is labelled for assistive technology and reports errors in an alert',
  async (t) => {
    const { world } = t.context;
    const page = await world.browser.newPage();
    await withoutAutofill(page);
    await authorize(world, page, { poolId: 'acme' }, async () => {
      const email = page.getByLabel('Email');
      t.is(await email.getAttribute('autocomplete'), 'username webauthn');
      await email.fill('kim@acme.example');
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('button', { name: 'Email me a code' }).click();
      await page.getByLabel('Code', { exact: true }).fill('000000');
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('alert').filter({ hasText: 'That code is not valid or has expired.' }).waitFor();
      await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode('kim@acme.example'));
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('button', { name: 'Not now' }).click();
    });
    t.pass();
  },
);
