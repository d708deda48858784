/**
 * Organizations in a real browser with Chromium's virtual authenticator:
 * an organization that switches passkey login off (its member's passkey is
 * refused and none is offered; another organization's member signs in with
 * theirs), one that requires MFA, and the picker for a user of several.
 */
import type { Page } from 'playwright-core';
import { addVirtualAuthenticator } from '../support/chromium.ts';
import {
  authorize,
  type BrowserWorld,
  browserTests,
  signUpOnPage,
  withoutAutofill,
} from './browser-login.ts';

const poolFile = (redirectUri: string) => `
display_name: Orgs
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [passkey, email_otp]
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${redirectUri}"]
    scope: openid email organization
    first_party: true
`;

const test = await browserTests((redirectUri) => ({ orgs: poolFile(redirectUri) }));
const SIGN_IN = { poolId: 'orgs', params: { scope: 'openid email organization', prompt: 'login' } };

/** A user who signed up on the page with a passkey (virtual authenticator), then joined `organizationIds`. */
async function memberWithPasskey(world: BrowserWorld, email: string, organizationIds: string[]) {
  const page = await world.browser.newPage();
  await withoutAutofill(page);
  await addVirtualAuthenticator(page);
  await authorize(world, page, { poolId: 'orgs' }, () => signUpOnPage(world, page, email));
  const { durable } = world.server.runtime;
  const user = await durable.users.findByEmail('orgs', email);
  if (!user) throw new Error('no user after sign-up');
  for (const id of organizationIds) await durable.organizations.addMember('orgs', id, user.id);
  return page;
}

async function passkeyFirst(page: Page) {
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
}

async function emailCode(world: BrowserWorld, page: Page, email: string) {
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
  await page.getByRole('button', { name: 'Continue' }).click();
}

test.serial(
  'an organization with passkey login off: its member’s passkey is refused and no passkey is offered; a member of another organization signs in with theirs',
  async (t) => {
    const { world } = t.context;
    const { organizations } = world.server.runtime.durable;
    const acme = await organizations.create({ poolId: 'orgs', slug: 'acme', name: 'Acme Corp' });
    const globex = await organizations.create({
      poolId: 'orgs',
      slug: 'globex',
      name: 'Globex',
      passkeyLogin: false,
    });

    const off = await memberWithPasskey(world, 'gil@orgs.example', [globex.id]);
    const claims = await authorize(world, off, SIGN_IN, async () => {
      await passkeyFirst(off);
      await off.getByText('Globex does not allow that way of signing in. Choose another.').waitFor();
      t.is(await off.getByRole('button', { name: 'Use your passkey' }).count(), 0);
      t.true(await off.getByText('Organization: Globex').isVisible());
      // After the code, straight back to the app: no offer to create a passkey.
      await emailCode(world, off, 'gil@orgs.example');
    });
    t.like(claims, { org_id: globex.id, org_name: 'Globex' });
    t.deepEqual(claims.amr, ['otp']);

    const on = await memberWithPasskey(world, 'ada@orgs.example', [acme.id]);
    const allowed = await authorize(world, on, SIGN_IN, () => passkeyFirst(on));
    t.like(allowed, { org_id: acme.id, org_name: 'Acme Corp' });
    t.true(allowed.amr?.includes('pop'));

    // Named in the request, the organization shows no passkey button at all.
    await off.goto(world.server.url);
    await authorize(
      world,
      off,
      { ...SIGN_IN, params: { ...SIGN_IN.params, organization: 'globex' } },
      async () => {
        await off.getByLabel('Email').waitFor();
        t.false(await off.getByRole('button', { name: 'Sign in with a passkey' }).isVisible());
        await off.getByLabel('Email').fill('gil@orgs.example');
        await off.getByRole('button', { name: 'Continue' }).click();
        await emailCode(world, off, 'gil@orgs.example');
      },
    );
    await off.close();
    await on.close();
  },
);

test.serial(
  'an organization that requires MFA asks its member for a second factor after an email code; a passkey with UV is enough alone',
  async (t) => {
    const { world } = t.context;
    const initech = await world.server.runtime.durable.organizations.create({
      poolId: 'orgs',
      slug: 'initech',
      name: 'Initech',
      requireMfa: true,
    });
    const page = await memberWithPasskey(world, 'ida@orgs.example', [initech.id]);
    const byCode = await authorize(world, page, SIGN_IN, async () => {
      await page.getByLabel('Email').fill('ida@orgs.example');
      await page.getByRole('button', { name: 'Continue' }).click();
      await emailCode(world, page, 'ida@orgs.example');
      await page.getByRole('heading', { name: 'Confirm it’s you' }).waitFor();
      await page.getByRole('button', { name: 'Use your passkey' }).click();
    });
    t.like(byCode, { org_name: 'Initech' });
    t.true(byCode.amr?.includes('mfa') && byCode.amr.includes('otp') && byCode.amr.includes('pop'));

    const byPasskey = await authorize(world, page, SIGN_IN, () => passkeyFirst(page));
    t.like(byPasskey, { org_name: 'Initech' });
    t.false(byPasskey.amr?.includes('otp'), 'no second step after a UV passkey');
    await page.close();
  },
);

test.serial(
  'a user of several organizations chooses one on the page, and the app is told which',
  async (t) => {
    const { world } = t.context;
    const { organizations } = world.server.runtime.durable;
    const [acme, globex] = await Promise.all([
      organizations.find('orgs', 'acme'),
      organizations.find('orgs', 'globex'),
    ]);
    const hooli = await organizations.create({ poolId: 'orgs', slug: 'hooli', name: 'Hooli' });
    const page = await memberWithPasskey(world, 'bo@orgs.example', [acme!.id, hooli.id]);
    const claims = await authorize(world, page, SIGN_IN, async () => {
      await passkeyFirst(page);
      await page.getByRole('heading', { name: 'Choose an organization' }).waitFor();
      const choices = page.getByRole('group', { name: 'Your organizations' }).getByRole('button');
      t.deepEqual(await choices.allTextContents(), ['Acme Corp', 'Hooli']);
      t.is(await page.getByRole('button', { name: globex!.name }).count(), 0);
      await page.getByRole('button', { name: 'Hooli' }).click();
    });
    t.like(claims, { org_id: hooli.id, org_name: 'Hooli' });
    await page.close();
  },
);
