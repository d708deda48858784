/**
 * A classic pool in a real browser (email first, then the user's own
 * passkeys), and what the relying app learns from a synced passkey compared
 * with a device-bound one.
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

const poolFile = (mode: 'smart' | 'classic', redirectUri: string) => `
display_name: Acme ${mode}
passkeys:
  mode: ${mode}
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
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
  t.context.world = await startBrowserWorld((redirectUri) => ({
    classic: poolFile('classic', redirectUri),
    smart: poolFile('smart', redirectUri),
  }));
});
test.after.always(async (t) => {
  await t.context.world?.close();
});

test.serial('classic pool: sign up, then sign in by email first and the user’s own passkey', async (t) => {
  const { world } = t.context;
  const page = await world.browser.newPage();
  const authenticator = await addVirtualAuthenticator(page);
  const signedUp = await authorize(world, page, { poolId: 'classic' }, () =>
    signUpOnPage(world, page, 'ben@acme.example'),
  );
  t.deepEqual(signedUp.amr, ['otp']);

  const signedIn = await authorize(
    world,
    page,
    { poolId: 'classic', params: { prompt: 'login' } },
    async () => {
      // A fresh login while signed in starts from who is signed in.
      await page.getByText('Signing in as ben@acme.example').waitFor();
      await page.getByRole('button', { name: 'Use your passkey' }).click();
    },
  );
  t.is(signedIn.sub, signedUp.sub);
  t.deepEqual(signedIn.amr, ['hwk', 'mfa', 'pop', 'user']);
  t.is(signedIn.acr, 'phrh');
  t.is((await authenticator.credentials()).length, 1);
  await page.close();
});

test.serial('a synced passkey gives acr phr and amr swk; a device-bound one phrh and hwk', async (t) => {
  const { world } = t.context;
  const results: Record<string, { amr?: string[]; acr?: string }> = {};
  for (const [kind, synced] of [
    ['synced', true],
    ['device-bound', false],
  ] as const) {
    const page = await world.browser.newPage();
    await withoutAutofill(page);
    await addVirtualAuthenticator(page, { synced });
    await authorize(world, page, { poolId: 'smart' }, () =>
      signUpOnPage(world, page, `${kind}@acme.example`),
    );
    results[kind] = await authorize(
      world,
      page,
      { poolId: 'smart', params: { prompt: 'login' } },
      async () => {
        await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
      },
    );
    await page.close();
  }
  t.deepEqual(results.synced, { ...results.synced, amr: ['mfa', 'pop', 'swk', 'user'], acr: 'phr' });
  t.deepEqual(results['device-bound'], {
    ...results['device-bound'],
    amr: ['hwk', 'mfa', 'pop', 'user'],
    acr: 'phrh',
  });
  const stored = await world.server.runtime.durable.users.findByEmail('smart', 'synced@acme.example');
  const [passkey] = await world.server.runtime.durable.passkeys.listByUser('smart', stored?.id ?? '');
  t.true(passkey?.backupEligible);
  t.is(passkey?.name, 'Synced passkey');
});
