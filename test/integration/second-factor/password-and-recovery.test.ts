/**
 * Passwords as a first factor, passkeys as a required second factor, and
 * recovery codes, through the interaction API: what a relying app gets, what
 * an attacker does not.
 */
import type { ExecutionContext } from 'ava';
import { hashRecoveryCode } from '../../../src/factors/recovery-code/recovery-codes.ts';
import { deriveKey } from '../../../src/secrets/derive-key.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import { TEST_SECRET } from '../../support/postern-server.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  type LoginFixture,
  type LoginServer,
  loginTests,
  REDIRECT,
  TaggedBrowser,
} from '../login/login-fixture.ts';
import {
  type BrowserSignIn,
  SIGNED_IN,
  SIGNED_OUT,
  startOffline,
  tokensOf,
  whatStillWorks,
} from '../self-service/signed-in-checks.ts';

const test = await loginTests();

const PASSWORD = 'correct horse battery';

const passwordPool = (required: 'always' | 'when_enrolled' | 'never' = 'always', extra = '') => `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [password]
  second_factor: [passkey, recovery_code]
  second_factor_required: ${required}
  password:
    max_failures: 8
    argon2: { memory_kib: 8192, iterations: 1 }
${extra}
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
    first_party: true
`;

async function serve(
  t: ExecutionContext<{ fixture: LoginFixture }>,
  pool = passwordPool(),
): Promise<LoginServer> {
  return t.context.fixture.start(t, { acme: pool }, { server: 'trust_proxy: true\n' });
}

const newBrowser = () => new TaggedBrowser({ 'x-forwarded-for': '198.51.100.7' });

/** Starts a login; `offline`: asking for a refresh token too (prompt=consent, see signed-in-checks.ts). */
const start = (login: LoginServer, browser = newBrowser(), { offline = false } = {}) =>
  offline
    ? startOffline(login.server, 'acme', browser)
    : InteractionClient.start(login.server, {
        poolId: 'acme',
        clientId: 'web',
        redirectUri: REDIRECT,
        browser,
      });

/** Signs up by code, password and (second factor) passkey; returns the recovery codes shown. */
async function signUp(
  t: ExecutionContext<{ fixture: LoginFixture }>,
  login: LoginServer,
  email: string,
  authenticator: SoftAuthenticator,
  browser?: TaggedBrowser,
  { offline = false } = {},
) {
  const client = await start(login, browser, { offline });
  await client.identify(email);
  await client.sendCode();
  const proven = await client.verifyCode(await t.context.fixture.mail.nextCode(email));
  t.like(proven.body, { step: 'enroll', reason: 'signup', methods: ['password'], optional: false });
  const weak = await client.post('/password', { password: 'short' });
  t.like(weak, { status: 400, body: { error: 'weak_password' } });
  const chosen = await client.post('/password', { password: PASSWORD });
  t.like(
    chosen.body,
    { step: 'enroll', reason: 'second_factor', optional: false },
    'no code before the second factor',
  );
  const options = await client.registerOptions();
  const registered = await client.registerVerify(
    authenticator.register(options.body as never, login.server.url),
  );
  t.is(registered.status, 200, JSON.stringify(registered.body));
  const codes = registered.body.recovery_codes as string[];
  t.is(codes.length, 10, 'the first second factor brings ten recovery codes');
  t.true(codes.every((code) => /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/.test(code)));
  const { claims, tokens } = await client.finish(String(registered.body.redirect_to));
  return { codes, claims, tokens };
}

/** The codes of the sign-in refusals audited in one interaction, oldest first. */
async function refusalCodes(login: LoginServer, client: InteractionClient) {
  const events = await login.server.runtime.durable.auditEvents.list('acme', {
    event: 'sign_in',
    limit: 100,
  });
  return events
    .filter((event) => event.outcome === 'failure' && event.detail?.interaction === client.uid)
    .map((event) => event.detail?.code)
    .reverse();
}

/** Password first; resolves at the second-factor step. */
async function passwordFirst(
  login: LoginServer,
  email: string,
  browser?: TaggedBrowser,
  { offline = false } = {},
) {
  const client = await start(login, browser, { offline });
  await client.identify(email);
  const answer = await client.post('/password', { password: PASSWORD });
  return { client, answer };
}

test('password + passkey, always: a code only after both factors, and amr says pwd, pop, mfa', async (t) => {
  const login = await serve(t);
  const authenticator = new SoftAuthenticator();
  const { claims: signedUp } = await signUp(t, login, 'ada@acme.example', authenticator);
  t.deepEqual(
    signedUp.amr,
    ['hwk', 'mfa', 'otp', 'pop', 'user'],
    'sign-up: email code and the passkey made as second factor',
  );
  t.is(signedUp.acr, '0', 'making a passkey is not a phishing-resistant sign-in');

  const { client, answer } = await passwordFirst(login, 'ada@acme.example');
  t.like(answer.body, { step: 'second_factor', methods: ['passkey', 'recovery_code'] });
  t.is(answer.body.redirect_to, undefined);
  const options = await client.passkeyOptions();
  t.deepEqual(
    options.body.allowCredentials?.map((credential) => credential.id),
    authenticator.credentials.map((credential) => credential.id.toString('base64url')),
  );
  const verified = await client.passkeyVerify(
    authenticator.authenticate(options.body as never, login.server.url),
  );
  const { claims } = await client.finish(String(verified.body.redirect_to));
  t.is(claims.sub, signedUp.sub);
  t.deepEqual(claims.amr, ['hwk', 'mfa', 'pop', 'pwd', 'user']);
  t.is(claims.acr, 'phrh');
});

test('a wrong password and an unknown email answer the same, and an account’s second factor must be its own', async (t) => {
  const login = await serve(t);
  await signUp(t, login, 'ben@acme.example', new SoftAuthenticator());
  const mallory = new SoftAuthenticator();
  await signUp(t, login, 'mallory@acme.example', mallory);

  const wrong = await start(login);
  await wrong.identify('ben@acme.example');
  const badPassword = await wrong.post('/password', { password: 'not the password' });
  const unknown = await start(login);
  await unknown.identify('nobody@acme.example');
  const noAccount = await unknown.post('/password', { password: PASSWORD });
  t.like(badPassword, { status: 400, body: { error: 'invalid_credentials' } });
  t.deepEqual(noAccount.body, badPassword.body);
  // Only the audit trail tells them apart.
  t.deepEqual(await refusalCodes(login, wrong), ['wrong_password']);
  t.deepEqual(await refusalCodes(login, unknown), ['unknown_email']);

  const { client } = await passwordFirst(login, 'ben@acme.example');
  const options = await client.passkeyOptions();
  const foreign = await client.passkeyVerify(
    mallory.authenticate(options.body as never, login.server.url, {
      credentialId: mallory.credentials[0]?.id.toString('base64url'),
    }),
  );
  t.like(foreign, { status: 400, body: { error: 'passkey_rejected' } });
  t.deepEqual(await refusalCodes(login, client), ['wrong_user']);
  t.like((await client.state()).body, { step: 'second_factor' }, 'still owes the second factor');
});

test('a recovery code signs in once, says how many remain, and the sign-in says so (otp, acr 0)', async (t) => {
  const login = await serve(t);
  const { codes } = await signUp(t, login, 'cy@acme.example', new SoftAuthenticator());

  const { client } = await passwordFirst(login, 'cy@acme.example');
  const used = await client.post('/recovery-code', {
    code: (codes[3] ?? '').toLowerCase().replaceAll('-', ' '),
  });
  t.like(used.body, { step: 'enroll', reason: 'recovery', optional: true, recovery_codes_remaining: 9 });
  t.is((used.body.passkeys as unknown[]).length, 1, 'the recovery step lists the passkeys to remove');
  const done = await client.skipEnroll();
  const { claims } = await client.finish(String(done.body.redirect_to));
  t.deepEqual(claims.amr, ['mfa', 'otp', 'pwd']);
  t.is(claims.acr, '0');

  const again = await passwordFirst(login, 'cy@acme.example');
  const reused = await again.client.post('/recovery-code', { code: codes[3] });
  t.like(reused, { status: 400, body: { error: 'invalid_code' } });
  t.deepEqual(await refusalCodes(login, again.client), ['unknown_or_used_code']);
});

test('of one recovery code sent at the same moment from five logins, exactly one signs in', async (t) => {
  const login = await serve(t);
  const { codes } = await signUp(t, login, 'dee@acme.example', new SoftAuthenticator());
  const logins = await Promise.all(Array.from({ length: 5 }, () => passwordFirst(login, 'dee@acme.example')));
  const results = await Promise.all(
    logins.map(({ client }) => client.post('/recovery-code', { code: codes[0] })),
  );
  t.deepEqual(results.map((result) => result.status).sort(), [200, 400, 400, 400, 400]);
  const userId = (await login.server.runtime.durable.users.findByEmail('acme', 'dee@acme.example'))?.id ?? '';
  t.is(await login.server.runtime.durable.recoveryCodes.countUnused('acme', userId), 9);
});

test('a recovery sign-in replaces the lost passkey: add a new one, remove the old, keep a way in', async (t) => {
  const login = await serve(t);
  const lost = new SoftAuthenticator();
  const { codes } = await signUp(t, login, 'eve@acme.example', lost);
  const { client } = await passwordFirst(login, 'eve@acme.example');
  const recovered = await client.post('/recovery-code', { code: codes[1] });
  const [old] = recovered.body.passkeys as Array<{ id: string }>;

  const replacement = new SoftAuthenticator();
  const options = await client.registerOptions({ name: 'New phone' });
  const added = await client.registerVerify(
    replacement.register(options.body as never, login.server.url),
    'New phone',
  );
  t.like(
    added.body,
    { step: 'enroll', reason: 'recovery' },
    'still in the recovery step, to remove the lost one',
  );
  t.is((added.body.passkeys as unknown[]).length, 2);
  const removed = await client.post('/passkey/remove', { id: old?.id });
  t.deepEqual(
    (removed.body.passkeys as Array<{ name: string }>).map((passkey) => passkey.name),
    ['New phone'],
  );
  const done = await client.skipEnroll();
  await client.finish(String(done.body.redirect_to));

  const next = await passwordFirst(login, 'eve@acme.example');
  const nextOptions = await next.client.passkeyOptions();
  t.throws(() => lost.authenticate(nextOptions.body as never, login.server.url), {
    message: /no credential/,
  });
  const verified = await next.client.passkeyVerify(
    replacement.authenticate(nextOptions.body as never, login.server.url),
  );
  t.truthy(verified.body.redirect_to);
  const eve = await login.server.runtime.durable.users.findByEmail('acme', 'eve@acme.example');
  const events = await login.server.runtime.durable.auditEvents.list('acme', { event: 'passkey_removed' });
  t.deepEqual(
    events.filter((event) => event.userId === eve?.id).map((event) => event.outcome),
    ['success'],
  );
});

test('a recovery step removes a lost passkey, never the last way in, even when asked twice at once', async (t) => {
  // Passkeys as the only first factor and no password: the last passkey must stay.
  const pool = `
passkeys:
  mode: classic
  rp: { id: localhost, origins: ["\${PUBLIC_URL}"] }
authentication:
  first_factor: [passkey]
  second_factor: [passkey, recovery_code]
  second_factor_required: always
  passkey_counts_as_two_factors: false
clients:
  - { client_id: web, token_endpoint_auth_method: none, redirect_uris: ["${REDIRECT}"], scope: openid email, first_party: true }
`;
  const login = await serve(t, pool);
  const authenticator = new SoftAuthenticator();
  const signUpClient = await start(login);
  await signUpClient.identify('fay@acme.example');
  await signUpClient.sendCode();
  await signUpClient.verifyCode(await t.context.fixture.mail.nextCode('fay@acme.example'));
  const options = await signUpClient.registerOptions();
  const registered = await signUpClient.registerVerify(
    authenticator.register(options.body as never, login.server.url),
  );
  const codes = registered.body.recovery_codes as string[];
  const primary = authenticator.credentials[0]?.id.toString('base64url');

  // A passkey that is not two factors needs another one after it: the first sign-in enrols it.
  const second = new SoftAuthenticator();
  const first = await start(login);
  await first.identify('fay@acme.example');
  const firstOptions = await first.passkeyOptions();
  const enrol = await first.passkeyVerify(
    authenticator.authenticate(firstOptions.body as never, login.server.url),
  );
  t.like(enrol.body, { step: 'enroll', reason: 'second_factor', optional: false });
  const secondOptions = await first.registerOptions();
  const enrolled = await first.registerVerify(second.register(secondOptions.body as never, login.server.url));
  t.truthy(enrolled.body.redirect_to, JSON.stringify(enrolled.body));

  // The second passkey is lost: a recovery code stands in for it, and the step lets it go, but not the first.
  const client = await start(login);
  await client.identify('fay@acme.example');
  const signInOptions = await client.passkeyOptions();
  const owed = await client.passkeyVerify(
    authenticator.authenticate(signInOptions.body as never, login.server.url, { credentialId: primary }),
  );
  t.like(owed.body, { step: 'second_factor', methods: ['passkey', 'recovery_code'] });

  // The first factor's passkey again is no second factor, and its refusal records no use.
  const { durable } = login.server.runtime;
  const before = await durable.passkeys.findByCredentialId('acme', primary ?? '');
  const againOptions = await client.passkeyOptions();
  const again = await client.passkeyVerify(
    authenticator.authenticate(againOptions.body as never, login.server.url, { credentialId: primary }),
  );
  t.like(again, { status: 400, body: { error: 'passkey_rejected' } });
  t.deepEqual(
    await durable.passkeys.findByCredentialId('acme', primary ?? ''),
    before,
    'counter and last use unchanged',
  );

  const recovered = await client.post('/recovery-code', { code: codes[0] });
  const passkeys = recovered.body.passkeys as Array<{ id: string }>;
  t.is(passkeys.length, 2);
  // Both at once: one goes, the other is refused (the check and the delete hold a per-user lock).
  const attempts = await Promise.all(passkeys.map(({ id }) => client.post('/passkey/remove', { id })));
  t.deepEqual(attempts.map((attempt) => attempt.status).sort(), [200, 409], JSON.stringify(attempts));
  const user = await login.server.runtime.durable.users.findByEmail('acme', 'fay@acme.example');
  const left = await login.server.runtime.durable.passkeys.listByUser('acme', user?.id ?? '');
  t.is(left.length, 1, 'the account keeps a way in');
  // The pool always asks for a second factor: the last passkey stays, password or not.
  const refused = await client.post('/passkey/remove', { id: left[0]?.id });
  t.like(refused, { status: 409, body: { error: 'last_second_factor' } });
  t.is(await login.server.runtime.durable.passkeys.countByUser('acme', user?.id ?? ''), 1);
});

test('guessing passwords pauses per account and address, then per account, but not other ways in', async (t) => {
  const login = await serve(t);
  // The owner signed up in this browser, which the pool now knows as theirs.
  const ownBrowser = new TaggedBrowser({ 'x-forwarded-for': '198.51.100.40' });
  await signUp(t, login, 'gus@acme.example', new SoftAuthenticator(), ownBrowser);
  // A browser of the owner's has a session too: prompt=login asks for the password all the same.
  const guess = async (address: string, password = 'wrong password!', browser?: TaggedBrowser) => {
    const client = await InteractionClient.start(login.server, {
      poolId: 'acme',
      clientId: 'web',
      redirectUri: REDIRECT,
      browser: browser ?? new TaggedBrowser({ 'x-forwarded-for': address }),
      ...(browser ? { params: { prompt: 'login' } } : {}),
    });
    await client.identify('gus@acme.example');
    return client.browser.fetch(`${client.base}/password`, { method: 'POST', json: { password } });
  };

  for (let i = 0; i < 5; i++) t.is((await guess('203.0.113.1')).status, 400);
  const paused = await guess('203.0.113.1', PASSWORD);
  t.is(paused.status, 429, 'even the right password waits from that address');
  t.regex(paused.headers.get('retry-after') ?? '', /^\d+$/);

  // The owner, from elsewhere, still gets in until the account-wide limit (8) is reached.
  const owner = await guess('198.51.100.20', PASSWORD);
  t.is(owner.status, 200);
  for (let i = 0; i < 8; i++) await guess(`203.0.113.${10 + i}`);
  const everywhere = await guess('198.51.100.21', PASSWORD);
  t.is(everywhere.status, 429, 'the account pauses for the window');
  const pauseSeconds = Number(everywhere.headers.get('retry-after'));
  t.true(pauseSeconds > 0 && pauseSeconds <= 15 * 60, 'for at most the pool’s failure_window');

  // The pause is for unknown browsers: the owner's own still signs in, however long the attack goes on.
  const known = await guess('198.51.100.41', PASSWORD, ownBrowser);
  t.is(known.status, 200, 'a browser that signed in before is not locked out');
  t.is((await guess('203.0.113.99', PASSWORD)).status, 429, 'an unknown browser still is');
  // A known-device cookie vouches only for its own account: another account's cookie is no key.
  const otherBrowser = new TaggedBrowser({ 'x-forwarded-for': '198.51.100.50' });
  await signUp(t, login, 'mal@acme.example', new SoftAuthenticator(), otherBrowser);
  t.is((await guess('198.51.100.50', PASSWORD, otherBrowser)).status, 429);
  const refusals = await login.server.runtime.durable.auditEvents.list('acme', { event: 'sign_in' });
  t.true(refusals.some((event) => event.outcome === 'failure' && event.detail?.code === 'wrong_password'));
});

test('when_enrolled: a user without a second factor signs in with the password alone', async (t) => {
  const login = await serve(t, passwordPool('when_enrolled'));
  const client = await start(login);
  await client.identify('hal@acme.example');
  await client.sendCode();
  await client.verifyCode(await t.context.fixture.mail.nextCode('hal@acme.example'));
  const chosen = await client.post('/password', { password: PASSWORD });
  t.like(chosen.body, { step: 'enroll', reason: 'offer', optional: true, conditional_create: true });
  await client.finish(String((await client.skipEnroll()).body.redirect_to));

  const { client: again, answer } = await passwordFirst(login, 'hal@acme.example');
  t.is(answer.status, 200);
  t.is(answer.body.step, undefined, 'the offer was skipped recently: not asked again');
  const { claims } = await again.finish(String(answer.body.redirect_to));
  t.deepEqual(claims.amr, ['pwd']);
  t.is(claims.acr, '0');
});

test('a conditional create after a password sign-in is accepted without presence or verification, only for the offer', async (t) => {
  const login = await serve(t, passwordPool('when_enrolled'));
  const client = await start(login);
  await client.identify('ivy@acme.example');
  await client.sendCode();
  await client.verifyCode(await t.context.fixture.mail.nextCode('ivy@acme.example'));
  await client.post('/password', { password: PASSWORD });
  const options = await client.registerOptions({ mediation: 'conditional' } as never);
  t.is((options.body.authenticatorSelection as { userVerification?: string }).userVerification, 'preferred');
  const authenticator = new SoftAuthenticator();
  const created = await client.registerVerify(
    authenticator.register(options.body as never, login.server.url, {
      userPresent: false,
      userVerified: false,
    }),
  );
  t.is(created.status, 200, JSON.stringify(created.body));
  t.is((created.body.recovery_codes as string[] | undefined)?.length, 10);
  // Made without a gesture, it proves nobody was there: the sign-in now asks for it, and the
  // ID token says what that did.
  t.like(created.body, { step: 'second_factor', methods: ['passkey', 'recovery_code'] });
  const signInOptions = await client.passkeyOptions();
  const used = await client.passkeyVerify(
    authenticator.authenticate(signInOptions.body as never, login.server.url),
  );
  const { claims } = await client.finish(String(used.body.redirect_to));
  t.deepEqual(claims.amr, ['hwk', 'mfa', 'otp', 'pop', 'user'], 'the sign-up’s email code, then the passkey');
  const metrics = await (await fetch(`${login.server.url}/metrics`)).text();
  t.regex(metrics, /postern_passkey_offers_total\{pool="acme",outcome="accepted_conditional"\} 1/);
  t.regex(metrics, /postern_passkey_offers_total\{pool="acme",outcome="shown"\} 1/);

  // It is stored as made without user verification: it never claims more than it proved.
  const userId = (await login.server.runtime.durable.users.findByEmail('acme', 'ivy@acme.example'))?.id ?? '';
  const stored = await login.server.runtime.durable.passkeys.listByUser('acme', userId);
  t.false(stored[0]?.uvInitialized);
});

test('when_enrolled: a passkey made at the offer after sign-up is the second step, not asked for again', async (t) => {
  const login = await serve(t, passwordPool('when_enrolled'));
  const client = await start(login);
  await client.identify('kai@acme.example');
  await client.sendCode();
  await client.verifyCode(await t.context.fixture.mail.nextCode('kai@acme.example'));
  await client.post('/password', { password: PASSWORD });
  const options = await client.registerOptions();
  const created = await client.registerVerify(
    new SoftAuthenticator().register(options.body as never, login.server.url),
  );
  t.truthy(created.body.redirect_to, JSON.stringify(created.body));
  t.is((created.body.recovery_codes as string[] | undefined)?.length, 10);
  const { claims } = await client.finish(String(created.body.redirect_to));
  t.deepEqual(claims.amr, ['hwk', 'mfa', 'otp', 'pop', 'user']);
  t.is(claims.acr, '0', 'making a passkey is not signing in with one');
});

test('creation options made for a sign-up carry the handle the account then gets, so they finish on it', async (t) => {
  const pool = `
passkeys:
  rp: { id: localhost, origins: ["\${PUBLIC_URL}"] }
authentication:
  first_factor: [passkey, email_otp]
  second_factor: [passkey, recovery_code]
  second_factor_required: always
clients:
  - { client_id: web, token_endpoint_auth_method: none, redirect_uris: ["${REDIRECT}"], scope: openid email, first_party: true }
`;
  const login = await serve(t, pool);
  const client = await start(login);
  await client.identify('lee@acme.example');
  await client.sendCode();
  const proven = await client.verifyCode(await t.context.fixture.mail.nextCode('lee@acme.example'));
  t.like(proven.body, { step: 'enroll', reason: 'signup', optional: true });
  const signUpOptions = await client.registerOptions();
  // Skipping creates the account (email codes sign it in); `always` then asks for a passkey.
  const skipped = await client.skipEnroll();
  t.like(skipped.body, { step: 'enroll', reason: 'second_factor', optional: false });
  // One user handle for the whole interaction (issue 8, item 9): the account
  // skipping created has the handle those options gave the authenticator.
  const user = await login.server.runtime.durable.users.findByEmail('acme', 'lee@acme.example');
  t.is((signUpOptions.body.user as { id: string }).id, user?.webauthnUserId ?? '');
  const authenticator = new SoftAuthenticator();
  const made = await client.registerVerify(
    authenticator.register(signUpOptions.body as never, login.server.url),
  );
  t.truthy(made.body.redirect_to, JSON.stringify(made.body));
  t.is(await login.server.runtime.durable.passkeys.countByUser('acme', user?.id ?? ''), 1);
});

test('recovery codes are stored only as keyed hashes', async (t) => {
  const login = await serve(t);
  const { codes } = await signUp(t, login, 'joy@acme.example', new SoftAuthenticator());
  const userId = (await login.server.runtime.durable.users.findByEmail('acme', 'joy@acme.example'))?.id ?? '';
  const key = deriveKey(TEST_SECRET, 'recovery-codes');
  const durable = login.server.runtime.durable;
  t.is(
    await durable.recoveryCodes.use('acme', userId, codes[9] ?? ''),
    undefined,
    'the code itself is not what is stored',
  );
  t.is(await durable.recoveryCodes.use('acme', userId, hashRecoveryCode(key, codes[9] ?? '')), 9);
});

test('a recovery sign-in signs the user out everywhere else; a browser already signed in as them stays', async (t) => {
  const login = await serve(t);
  const email = 'nia@acme.example';
  const stolen = new SoftAuthenticator();
  const browserA = newBrowser();
  const { codes, tokens } = await signUp(t, login, email, stolen, browserA, { offline: true });
  const laptop: BrowserSignIn = {
    browser: browserA,
    access: tokens.access_token,
    refresh: tokens.refresh_token ?? '',
  };

  // Whoever has the passkey and the password signs in elsewhere.
  const browserB = newBrowser();
  const { client: thief } = await passwordFirst(login, email, browserB, { offline: true });
  const options = await thief.passkeyOptions();
  const signedIn = await thief.passkeyVerify(stolen.authenticate(options.body as never, login.server.url));
  const thiefs = await tokensOf(thief, signedIn.body.redirect_to, browserB);
  t.deepEqual(await whatStillWorks(login.server, 'acme', thiefs), SIGNED_IN);

  // The user, without the passkey, recovers in a new browser.
  const browserC = newBrowser();
  const { client } = await passwordFirst(login, email, browserC, { offline: true });
  const recovered = await client.post('/recovery-code', { code: codes[0] });
  t.like(recovered.body, { step: 'enroll', reason: 'recovery', signed_out: { sessions: 2, apps: 1 } });
  t.deepEqual(
    await whatStillWorks(login.server, 'acme', thiefs),
    SIGNED_OUT,
    'signed out as the code is accepted',
  );
  t.deepEqual(await whatStillWorks(login.server, 'acme', laptop), SIGNED_OUT);
  const done = await client.skipEnroll();
  const phone = await tokensOf(client, done.body.redirect_to, browserC);
  t.deepEqual(await whatStillWorks(login.server, 'acme', phone), SIGNED_IN);

  // Recovering again where the user is already signed in keeps that browser's session and apps.
  const again = await startOffline(login.server, 'acme', browserC, { prompt: 'login consent' });
  await again.identify(email);
  t.like((await again.post('/password', { password: PASSWORD })).body, { step: 'second_factor' });
  const kept = await again.post('/recovery-code', { code: codes[1] });
  t.like(kept.body, { signed_out: { sessions: 0, apps: 0 } });
  t.deepEqual(await whatStillWorks(login.server, 'acme', phone), SIGNED_IN);

  const nia = await login.server.runtime.durable.users.findByEmail('acme', email);
  const events = await login.server.runtime.durable.auditEvents.list('acme', {
    userId: nia?.id ?? '',
    event: 'signed_out_elsewhere',
  });
  t.deepEqual(
    events.map((event) => [event.detail?.reason, event.detail?.sessions, event.detail?.grants]),
    [
      ['recovery_sign_in', 0, 0],
      ['recovery_sign_in', 2, 2],
    ],
  );
});

test('removing the lost passkey at the recovery step signs out whoever signed in with it since; this browser stays', async (t) => {
  const login = await serve(t);
  const email = 'ora@acme.example';
  const stolen = new SoftAuthenticator();
  const laptopBrowser = newBrowser();
  const { codes, tokens } = await signUp(t, login, email, stolen, laptopBrowser, { offline: true });
  const laptop: BrowserSignIn = {
    browser: laptopBrowser,
    access: tokens.access_token,
    refresh: tokens.refresh_token ?? '',
  };

  // The user recovers on the laptop, already signed in there: it stays signed in.
  const client = await startOffline(login.server, 'acme', laptopBrowser, { prompt: 'login consent' });
  await client.identify(email);
  t.like((await client.post('/password', { password: PASSWORD })).body, { step: 'second_factor' });
  const recovered = await client.post('/recovery-code', { code: codes[0] });
  t.like(recovered.body, { step: 'enroll', reason: 'recovery', signed_out: { sessions: 0, apps: 0 } });
  const [lost] = recovered.body.passkeys as Array<{ id: string }>;

  // Meanwhile, whoever has the passkey and the password signs in again elsewhere.
  const thiefBrowser = newBrowser();
  const { client: thief } = await passwordFirst(login, email, thiefBrowser, { offline: true });
  const options = await thief.passkeyOptions();
  const signedIn = await thief.passkeyVerify(stolen.authenticate(options.body as never, login.server.url));
  const thiefs = await tokensOf(thief, signedIn.body.redirect_to, thiefBrowser);
  t.deepEqual(await whatStillWorks(login.server, 'acme', thiefs), SIGNED_IN);

  // A new passkey (the pool always asks for a second factor), then the lost one goes, and the thief with it.
  const replacement = new SoftAuthenticator();
  const creation = await client.registerOptions();
  const added = await client.registerVerify(replacement.register(creation.body as never, login.server.url));
  t.like(added.body, { step: 'enroll', reason: 'recovery' }, JSON.stringify(added.body));
  const removed = await client.post('/passkey/remove', { id: lost?.id });
  t.is(removed.status, 200, JSON.stringify(removed.body));
  t.like(removed.body, { step: 'enroll', reason: 'recovery', signed_out: { sessions: 1, apps: 1 } });
  t.deepEqual(
    await whatStillWorks(login.server, 'acme', thiefs),
    SIGNED_OUT,
    'refresh, userinfo, prompt=none',
  );
  t.deepEqual(await whatStillWorks(login.server, 'acme', laptop), SIGNED_IN, 'this browser is kept');

  // The interaction completes, and what it gives works.
  const done = await client.skipEnroll();
  const now = await tokensOf(client, done.body.redirect_to, laptopBrowser);
  t.deepEqual(await whatStillWorks(login.server, 'acme', now), SIGNED_IN);

  const ora = await login.server.runtime.durable.users.findByEmail('acme', email);
  const events = await login.server.runtime.durable.auditEvents.list('acme', {
    userId: ora?.id ?? '',
    event: 'signed_out_elsewhere',
  });
  t.like(events[0], { outcome: 'success', detail: { reason: 'passkey_removed', sessions: 1, grants: 1 } });
});
