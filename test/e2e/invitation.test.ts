/**
 * An invitation, end to end in Chromium: the operator runs `postern users
 * create` against an invite-only, passkey-only pool; the user opens the
 * link it prints (and mails), enters the code mailed to them, creates a
 * passkey with Chromium's virtual authenticator, and signs in with it at a
 * relying app (openid-client), which gets the invited account's `sub`.
 */
import { addVirtualAuthenticator } from '../support/chromium.ts';
import { TEST_SECRET } from '../support/postern-server.ts';
import { runPostern } from '../support/spawn-postern.ts';
import { authorize, browserTests, withoutAutofill } from './browser-login.ts';

const poolFile = (redirectUri: string) => `
display_name: Acme
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [passkey]
registration:
  mode: invite_only
clients:
  - client_id: web
    client_name: Acme Web
    token_endpoint_auth_method: none
    redirect_uris: ["${redirectUri}"]
    scope: openid email
    first_party: true
`;

const test = await browserTests((redirectUri) => ({ acme: poolFile(redirectUri) }));

test('an operator invites a user with postern users create; the user enrols a passkey through the link and signs in', async (t) => {
  const { world } = t.context;
  const { server } = world;
  const email = 'ada@acme.example';
  const created = await runPostern(
    [
      'users',
      'create',
      '--pool',
      'acme',
      '--email',
      email,
      '--name',
      'Ada',
      '--config',
      server.configDir.dir,
    ],
    {
      DATABASE_URL: server.config.server.database.url,
      REDIS_URL: server.config.server.redis.url,
      POSTERN_SECRET: TEST_SECRET,
      PUBLIC_URL: server.url,
      SMTP_URL: world.mail.url,
    },
  );
  t.is(created.code, 0, created.stderr);
  const link = /(http\S+\/enroll\/[A-Za-z0-9_-]{43})/.exec(created.stdout)?.[1];
  if (!link) throw new Error(`no link in: ${created.stdout}`);
  await world.mail.next(email); // the invitation itself

  const page = await world.browser.newPage();
  const authenticator = await addVirtualAuthenticator(page);
  await withoutAutofill(page);
  await page.goto(link);
  await page.getByText('First we check that a••@acme.example is yours').waitFor();
  await page.getByRole('button', { name: 'Email me a code' }).click();
  await page.getByLabel('Code', { exact: true }).fill(await world.mail.nextCode(email));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Name the passkey (optional)').fill('Test laptop');
  await page.getByRole('button', { name: 'Create a passkey' }).click();
  await page.getByText('Your passkey “Test laptop” is ready').waitFor();

  const [credential] = await authenticator.credentials();
  t.true(credential?.isResidentCredential, 'a smart pool’s invitation makes a discoverable passkey');
  const user = await server.runtime.durable.users.findByEmail('acme', email);
  t.like(user, { name: 'Ada', emailVerified: true });

  const claims = await authorize(world, page, { poolId: 'acme' }, async () => {
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  });
  t.is(claims.sub, user?.id ?? 'missing');
  t.deepEqual(claims.amr, ['hwk', 'mfa', 'pop', 'user']);

  // The link worked once.
  await page.goto(link);
  await page.getByText('This link was already used').waitFor();
  await page.close();
});
