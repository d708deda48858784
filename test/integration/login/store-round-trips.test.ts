/**
 * How many store round trips one usernameless passkey sign-in costs, from
 * the authorization request to the token response: every call the server
 * makes on PostgreSQL or Redis, counted by wrapping its stores
 * (test/support/counting-stores.ts). The bound is today's figure, so a
 * change that adds a round trip fails here, and the log says which step
 * makes which. Of the 27, oidc-provider makes 17 (interactions, session,
 * grant, code, access token, and the account for the ID token); the login
 * layer's own are 10 (README, Performance).
 */

import { countStoreCalls, type StoreCalls } from '../../support/counting-stores.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { loginTests, poolFile, REDIRECT } from './login-fixture.ts';

const test = await loginTests();

const pool = poolFile();

/** The most round trips a usernameless sign-in may make (authorize to token). */
const MOST_ROUND_TRIPS = 27;

test('a usernameless passkey sign-in, authorize to token, makes at most MOST_ROUND_TRIPS store round trips', async (t) => {
  let record: StoreCalls | undefined;
  const login = await t.context.fixture.start(
    t,
    { acme: pool },
    {
      wrapStores(stores) {
        const counted = countStoreCalls(stores);
        record = counted.record;
        return counted;
      },
    },
  );
  const { server } = login;
  const authenticator = new SoftAuthenticator();
  const signUp = await InteractionClient.start(server, {
    poolId: 'acme',
    clientId: 'web',
    redirectUri: REDIRECT,
  });
  await signUp.identify('ada@acme.example');
  await signUp.sendCode();
  await signUp.verifyCode(await t.context.fixture.mail.nextCode('ada@acme.example'));
  const created = await signUp.registerVerify(
    authenticator.register((await signUp.registerOptions()).body as never, server.url),
  );
  await signUp.finish(String(created.body.redirect_to));

  record!.reset();
  const byStep: Record<string, string[]> = {};
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const before = record!.calls.length;
    const result = await run();
    byStep[name] = record!.calls.slice(before);
    return result;
  };
  const signIn = await step('authorize', () =>
    InteractionClient.start(server, { poolId: 'acme', clientId: 'web', redirectUri: REDIRECT }),
  );
  await step('page', () => signIn.browser.fetch(signIn.base));
  await step('state', () => signIn.state());
  const options = await step('options', () => signIn.passkeyOptions());
  const verified = await step('verify', () =>
    signIn.passkeyVerify(authenticator.authenticate(options.body as never, server.url)),
  );
  t.is(verified.status, 200, JSON.stringify(verified.body));
  const callback = await step('resume', () => signIn.followToApp(String(verified.body.redirect_to)));
  const { claims } = await step('token', () => signIn.redeem(callback));
  t.truthy(claims.sub);

  const total = Object.values(byStep).reduce((sum, calls) => sum + calls.length, 0);
  for (const [name, calls] of Object.entries(byStep)) t.log(`${name} (${calls.length}): ${calls.join(', ')}`);
  t.log(`total: ${total}`);
  t.true(total <= MOST_ROUND_TRIPS, `${total} round trips, at most ${MOST_ROUND_TRIPS}`);
});
