/**
 * Enrolling a passkey to meet a requirement, as an attacker holding only a
 * password and as a signed-in user without a passkey see it: a required
 * second factor or a step-up passkey is made only once the email is proven
 * in the same interaction, the last passkey of a pool that always asks for
 * one stays, and a step-up that cannot be met tells the app so cleanly.
 */
import type { ExecutionContext } from 'ava';
import { finishLogin } from '../../support/finish-login.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { type LoginFixture, type LoginServer, loginTests, REDIRECT } from '../login/login-fixture.ts';

const test = await loginTests();

const PASSWORD = 'correct horse battery';

const pool = ({
  firstFactor,
  required,
}: {
  firstFactor: string[];
  required: 'never' | 'when_enrolled' | 'always';
}) => `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [${firstFactor.join(', ')}]
  second_factor_required: ${required}
${required === 'never' ? '' : '  second_factor: [passkey, recovery_code]\n'}  password:
    argon2: { memory_kib: 8192, iterations: 1 }
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

type Context = ExecutionContext<{ fixture: LoginFixture }>;

/** Each test has a pool of its own, so a snapshot of its rows sees that test's writes only. */
const start = (login: LoginServer, poolId: string) =>
  InteractionClient.start(login.server, { poolId, clientId: 'web', redirectUri: REDIRECT });

/** Signs up by email code and chooses a password, then walks away before the required passkey. */
async function abandonedSignUp(t: Context, login: LoginServer, email: string) {
  const client = await start(login, 'abandoned');
  await client.identify(email);
  await client.sendCode();
  await client.verifyCode(await t.context.fixture.mail.nextCode(email));
  const chosen = await client.post('/password', { password: PASSWORD });
  t.like(chosen.body, { step: 'enroll', reason: 'second_factor', optional: false });
}

test('always: a password alone cannot enrol the required passkey of an account that never finished sign-up', async (t) => {
  const { fixture } = t.context;
  const login = await fixture.start(t, {
    abandoned: pool({ firstFactor: ['password'], required: 'always' }),
  });
  const email = 'abandoned@abandoned.example';
  await abandonedSignUp(t, login, email);

  // Whoever has the password now gets the password step, then must prove the email.
  const attacker = await start(login, 'abandoned');
  await attacker.identify(email);
  const afterPassword = await attacker.post('/password', { password: PASSWORD });
  t.like(afterPassword.body, { step: 'second_factor', reason: 'prove_email', methods: ['email_otp'] });
  const before = await fixture.accounts('abandoned');
  const options = await attacker.post('/passkey/register/options', {});
  t.like(
    options,
    { status: 400, body: { error: 'invalid_request' } },
    'no creation options before the proof',
  );
  const skipped = await attacker.post('/enroll/skip', {});
  t.is(skipped.status, 400);
  const wrongCode = await attacker.post('/email-otp/verify', { code: '000000' });
  t.is(wrongCode.status, 400);
  t.deepEqual(await fixture.accounts('abandoned'), before, 'nothing was enrolled');

  // The owner, who reads the mailbox, proves it and enrols; amr says password and the new passkey.
  const owner = await start(login, 'abandoned');
  await owner.identify(email);
  await owner.post('/password', { password: PASSWORD });
  const sent = await owner.sendCode();
  t.like(sent.body, { step: 'second_factor', reason: 'prove_email', code_sent: true });
  const proven = await owner.verifyCode(await fixture.mail.nextCode(email));
  t.like(proven.body, { step: 'enroll', reason: 'second_factor', optional: false });
  const authenticator = new SoftAuthenticator();
  const created = await owner.registerOptions();
  const registered = await owner.registerVerify(
    authenticator.register(created.body as never, login.server.url),
  );
  t.is(registered.status, 200, JSON.stringify(registered.body));
  const { claims } = await owner.finish(String(registered.body.redirect_to));
  t.true((claims.amr as string[]).includes('pwd'));
  t.true((claims.amr as string[]).includes('mfa'));
});

test('always: the last passkey stays, though the password is a way in', async (t) => {
  const { fixture } = t.context;
  const login = await fixture.start(t, {
    keeper: pool({ firstFactor: ['password'], required: 'always' }),
  });
  const email = 'keeper@keeper.example';
  const client = await start(login, 'keeper');
  await client.identify(email);
  await client.sendCode();
  await client.verifyCode(await fixture.mail.nextCode(email));
  await client.post('/password', { password: PASSWORD });
  const authenticator = new SoftAuthenticator();
  const options = await client.registerOptions();
  const registered = await client.registerVerify(
    authenticator.register(options.body as never, login.server.url),
  );
  const { tokens } = await client.finish(String(registered.body.redirect_to));

  const [passkey] = (await (
    await fetch(`${login.server.url}/keeper/api/self/passkeys`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    })
  ).json()) as Array<{ id: string }>;
  const removal = await fetch(`${login.server.url}/keeper/api/self/passkeys/${passkey?.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${tokens.access_token}`, accept: 'application/json' },
  });
  t.is(removal.status, 409);
  t.is(((await removal.json()) as { error: string }).error, 'last_second_factor');
  const users = await fixture.accounts('keeper');
  t.is(users.passkeys.length, 1, 'the passkey is still there');
});

test('step-up for a signed-in user without a passkey: prove it is them, create one, sign in with it', async (t) => {
  const { fixture } = t.context;
  const login = await fixture.start(t, {
    'step-up': pool({ firstFactor: ['passkey', 'email_otp'], required: 'never' }),
  });
  const email = 'no-passkey@step-up.example';
  await login.server.runtime.durable.users.create({ poolId: 'step-up', email, emailVerified: true });

  // Signed in by email code (and no passkey, though offered).
  const first = await start(login, 'step-up');
  await first.identify(email);
  await first.sendCode();
  const offered = await first.verifyCode(await fixture.mail.nextCode(email));
  t.like(offered.body, { step: 'enroll', reason: 'offer' });
  const skipped = await first.post('/enroll/skip', {});
  await first.finish(String(skipped.body.redirect_to));

  // The app asks for a passkey sign-in in the same browser.
  const stepUp = await InteractionClient.start(login.server, {
    poolId: 'step-up',
    clientId: 'web',
    redirectUri: REDIRECT,
    browser: first.browser,
    params: { acr_values: 'phr' },
  });
  const state = await stepUp.state();
  t.like(state.body, { step: 'first_factor', reason: 'step_up_enroll', methods: ['email_otp'], email });
  t.is(state.body.signup_open, undefined, 'no "create an account" for a signed-in user');
  const elsewhere = await stepUp.post('/email-otp/send', { email: 'someone-else@step-up.example' });
  t.is(elsewhere.status, 400, 'the code goes to the signed-in user only');

  await stepUp.sendCode();
  const proven = await stepUp.verifyCode(await fixture.mail.nextCode(email));
  t.like(proven.body, { step: 'enroll', reason: 'step_up', optional: false, methods: ['passkey'] });
  const authenticator = new SoftAuthenticator();
  const options = await stepUp.registerOptions();
  const created = await stepUp.registerVerify(
    authenticator.register(options.body as never, login.server.url),
  );
  t.like(created.body, { step: 'first_factor', reason: 'step_up', methods: ['passkey'] });
  const request = await stepUp.passkeyOptions();
  const verified = await stepUp.passkeyVerify(
    authenticator.authenticate(request.body as never, login.server.url),
  );
  const { claims } = await stepUp.finish(String(verified.body.redirect_to));
  t.regex(String(claims.acr), /^phrh?$/, 'a passkey sign-in');
  const user = await login.server.runtime.durable.users.findByEmail('step-up', email);
  t.is(claims.sub, String(user?.id), 'the same user, stepped up');
});

test('step-up that cannot be met: the app gets unmet_authentication_requirements; Cancel returns to the app', async (t) => {
  const { fixture } = t.context;
  const login = await fixture.start(t, {
    unmet: pool({ firstFactor: ['passkey', 'password'], required: 'never' }),
  });
  const email = 'no-way@unmet.example';
  const user = await login.server.runtime.durable.users.create({
    poolId: 'unmet',
    email,
    emailVerified: true,
  });
  // A session from an earlier login (say, before passkeys), and neither a password nor a passkey now.
  const first = await start(login, 'unmet');
  const provider = login.server.registry.get('unmet')?.provider;
  if (!provider) throw new Error('no provider');
  await first.finish(await finishLogin(provider, first.uid, { accountId: user.id }));

  const stepUp = (browser = first.browser) =>
    InteractionClient.start(login.server, {
      poolId: 'unmet',
      clientId: 'web',
      redirectUri: REDIRECT,
      browser,
      params: { acr_values: 'phr' },
    });
  const unmet = await stepUp();
  const state = await unmet.state();
  t.truthy(state.body.redirect_to, JSON.stringify(state.body));
  const callback = await unmet.followToApp(String(state.body.redirect_to));
  t.is(callback.searchParams.get('error'), 'unmet_authentication_requirements');

  // A user who could step up (they have a password now) but cancels: back at the app, not an error page.
  await login.server.runtime.durable.users.setPasswordHash('unmet', user.id, 'not-a-real-hash');
  const cancelled = await stepUp();
  t.like((await cancelled.state()).body, {
    step: 'first_factor',
    reason: 'step_up_enroll',
    methods: ['password'],
  });
  const abort = await cancelled.abort();
  const back = await cancelled.followToApp(String(abort.body.redirect_to));
  t.is(back.searchParams.get('error'), 'access_denied');
});
