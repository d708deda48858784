/**
 * Email links as a delivery of one-time codes (`authentication.email_otp.
 * delivery: both`), in a real browser: the link opened in the browser that
 * asked for it signs the user in to the app; opened in another browser it
 * signs nobody in and only shows the code, which then works where the user
 * asked for it.
 */
import type { Page } from 'playwright-core';
import { authorize, type BrowserWorld, browserTests, withoutAutofill } from './browser-login.ts';

const poolFile = (redirectUri: string) => `
display_name: Acme
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [email_otp, passkey]
  email_otp:
    delivery: both
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

/** The email link in the next mail to `email` (quoted-printable undone). */
async function mailedLink(world: BrowserWorld, email: string): Promise<{ link: string; code: string }> {
  const { raw } = await world.mail.next(email);
  const text = raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  const link = /https?:\/\/\S+\/email-link#code=(\d{6})/.exec(text);
  if (!link) throw new Error(`no email link in: ${text.slice(0, 600)}`);
  return { link: link[0], code: link[1] ?? '' };
}

async function askForCode(page: Page, email: string) {
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await page.getByText('a link (open it in this browser) with a 6-digit code').waitFor();
}

test.serial('the link signs the user in where they asked for it', async (t) => {
  const { world } = t.context;
  const page = await world.browser.newPage();
  await withoutAutofill(page);
  const email = 'ada@acme.example';
  const user = await world.server.runtime.durable.users.create({
    poolId: 'acme',
    email,
    emailVerified: true,
  });
  const claims = await authorize(world, page, { poolId: 'acme' }, async () => {
    await askForCode(page, email);
    const { link } = await mailedLink(world, email);
    await page.goto(link);
  });
  t.deepEqual(claims.amr, ['otp']);
  t.is(claims.sub, user.id);
  await page.close();
});

test.serial('opened in another browser the link signs no one in and shows the code instead', async (t) => {
  const { world } = t.context;
  const page = await world.browser.newPage();
  await withoutAutofill(page);
  const email = 'bo@acme.example';
  await world.server.runtime.durable.users.create({ poolId: 'acme', email, emailVerified: true });
  const claims = await authorize(world, page, { poolId: 'acme' }, async () => {
    await askForCode(page, email);
    const { link, code } = await mailedLink(world, email);

    const elsewhere = await world.browser.newContext();
    const other = await elsewhere.newPage();
    await other.goto(link);
    await other.getByRole('heading', { name: 'Enter this code where you asked for it' }).waitFor();
    t.is(await other.locator('#code').textContent(), code);
    t.false(other.url().includes('#'), 'the code left the address bar');
    await elsewhere.close();

    await page.getByLabel('Code', { exact: true }).fill(code);
    await page.getByRole('button', { name: 'Continue' }).click();
  });
  t.deepEqual(claims.amr, ['otp']);
  await page.close();
});
