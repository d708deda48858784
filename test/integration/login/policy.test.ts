/**
 * The pool's login policy as the interaction API enforces it: who may sign
 * up, when a passkey is required or offered, the per-user passkey limit,
 * consent for third-party clients, aborting, the interaction cookie that
 * binds every call, and the audit trail a login leaves.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Browserless } from '../../support/browserless.ts';
import { probePostgres, probeRedis, serviceTest } from '../../support/services.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  createUser,
  type LoginFixture,
  mailedCode,
  openLoginFixture,
  otherCode,
  type PoolOptions,
  passkeySignIn,
  poolFile,
  REDIRECT,
  receivedMail,
  signUp,
  startLogin,
  TaggedBrowser,
  withoutEmail,
} from './login-fixture.ts';

interface Context {
  fixture: LoginFixture;
}

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<Context>);

test.before(async (t) => {
  t.context.fixture = await openLoginFixture();
});

test.after.always(async (t) => {
  await t.context.fixture?.close();
});

/** A server with the given pools for this test. */
async function serve(t: ExecutionContext<Context>, pools: Record<string, PoolOptions>) {
  const { fixture } = t.context;
  const files = Object.fromEntries(Object.entries(pools).map(([id, options]) => [id, poolFile(options)]));
  const started = await fixture.start(t, files);
  return { ...started, mail: fixture.mail, accounts: (poolId: string) => fixture.accounts(poolId) };
}

test('open registration: a new email signs up with a code, then a passkey', async (t) => {
  const { server, mail } = await serve(t, { open: { registration: 'open' } });
  const email = 'newcomer@acme.example';
  const login = await startLogin(server, 'open');
  t.is((await login.identify(email)).status, 200);
  await login.sendCode();
  t.regex((await mail.next(email)).raw, /Confirm your email/);
  await login.sendCode(); // the first mail was read above; use a fresh code
  const verified = await login.verifyCode(await mail.nextCode(email));
  t.like(verified.body, { step: 'enroll', reason: 'signup', methods: ['passkey'] });
  t.is(
    await server.runtime.durable.users.findByEmail('open', email),
    undefined,
    'no account before the passkey',
  );

  const authenticator = new SoftAuthenticator();
  const options = await login.registerOptions();
  // The pool's name beside the email: pickers tell pools under one RP ID apart.
  t.is(options.body.user.name, `${email} (Acme)`);
  t.is(options.body.user.displayName, `${email} (Acme)`);
  const registered = await login.registerVerify(authenticator.register(options.body as never, server.url));
  t.is(registered.status, 200, JSON.stringify(registered.body));
  const { claims } = await login.finish(String(registered.body.redirect_to));
  t.deepEqual(claims.amr, ['otp']);

  const user = await server.runtime.durable.users.findByEmail('open', email);
  t.is(user?.id, claims.sub);
  t.true(user?.emailVerified);
  t.is(await server.runtime.durable.passkeys.countByUser('open', claims.sub), 1);
});

test('creation options asked for at once in one sign-up all carry the same user.id', async (t) => {
  // A double click, or the page open twice: three options calls at once. Progress
  // writes are held back 30 ms, so all three read the progress before any writes it.
  const { fixture } = t.context;
  const { server } = await fixture.start(
    t,
    { once: poolFile() },
    {
      wrapStores: ({ durable, ephemeral }) => ({
        durable,
        ephemeral: new Proxy(ephemeral, {
          get(target, property, receiver) {
            const value = Reflect.get(target, property, receiver);
            if (property !== 'set' || typeof value !== 'function') return value;
            return async (key: string, ...rest: unknown[]) => {
              if (key.startsWith('login:')) await new Promise((resolve) => setTimeout(resolve, 30));
              return value.call(target, key, ...rest);
            };
          },
        }),
      }),
    },
  );
  const email = 'at-once@acme.example';
  const login = await startLogin(server, 'once');
  await login.identify(email);
  const proven = await login.verifyCode(await mailedCode(login, fixture.mail, email));
  t.like(proven.body, { step: 'enroll', reason: 'signup' });

  const answers = await Promise.all([1, 2, 3].map(() => login.registerOptions()));
  t.deepEqual(
    answers.map((answer) => answer.status),
    [200, 200, 200],
  );
  const handles = answers.map((answer) => answer.body.user.id);
  t.is(new Set(handles).size, 1, JSON.stringify(handles));

  // Each call replaced the interaction's challenge; options asked for now carry the
  // same handle again, and the account made with them gets it.
  const last = await login.registerOptions();
  t.is(last.body.user.id, handles[0] ?? '');
  const authenticator = new SoftAuthenticator();
  const registered = await login.registerVerify(authenticator.register(last.body as never, server.url));
  t.is(registered.status, 200, JSON.stringify(registered.body));
  const user = await server.runtime.durable.users.findByEmail('once', email);
  t.is(user?.webauthnUserId, handles[0]);
});

test('invite-only and disabled registration: an unknown email is answered like a known one, gets no mail, and no code signs it up', async (t) => {
  const { server, mail, accounts } = await serve(t, {
    invite: { registration: 'invite_only' },
    closed: { registration: 'disabled' },
  });
  for (const poolId of ['invite', 'closed']) {
    const member = `member@${poolId}.example`;
    const stranger = `stranger@${poolId}.example`;
    await createUser(server, poolId, member);
    const before = await accounts(poolId);

    const memberLogin = await startLogin(server, poolId);
    await memberLogin.identify(member);
    const memberSent = await memberLogin.sendCode();
    const memberCode = await mail.nextCode(member);

    const strangerLogin = await startLogin(server, poolId);
    await strangerLogin.identify(stranger);
    const strangerSent = await strangerLogin.sendCode();
    t.is(strangerSent.status, memberSent.status, poolId);
    t.deepEqual(withoutEmail(strangerSent.body), withoutEmail(memberSent.body), poolId);
    t.false(await receivedMail(mail, stranger), `${poolId}: no mail for the stranger`);

    for (const code of ['000000', '123456', memberCode, otherCode(memberCode)]) {
      const refused = await strangerLogin.verifyCode(code);
      t.is(refused.status, 400, `${poolId}: ${code}`);
      t.is(refused.body.error, 'invalid_code', `${poolId}: ${code}`);
    }
    t.deepEqual(await accounts(poolId), before, `${poolId}: no user was created`);
    t.is(await server.runtime.durable.users.findByEmail(poolId, stranger), undefined);
  }
});

test('a passkey-only pool proves the email by code at sign-up, then requires a passkey', async (t) => {
  const { server, mail, accounts } = await serve(t, { 'passkey-only': { firstFactor: ['passkey'] } });
  const email = 'pat@acme.example';
  const login = await startLogin(server, 'passkey-only');
  const identified = await login.identify(email);
  t.deepEqual(identified.body.methods, ['passkey']);
  const verified = await login.verifyCode(await mailedCode(login, mail, email));
  t.like(verified.body, { step: 'enroll', optional: false, reason: 'signup' });

  const before = await accounts('passkey-only');
  const skipped = await login.skipEnroll();
  t.is(skipped.status, 400);
  t.is(skipped.body.error, 'invalid_request');
  t.deepEqual(await accounts('passkey-only'), before, 'skipping created nothing');

  const options = await login.registerOptions();
  const registered = await login.registerVerify(
    new SoftAuthenticator().register(options.body as never, server.url),
  );
  t.is(registered.status, 200, JSON.stringify(registered.body));
  const { claims } = await login.finish(String(registered.body.redirect_to));
  t.is(await server.runtime.durable.passkeys.countByUser('passkey-only', claims.sub), 1);
});

test('a pool signing in by email code makes the sign-up passkey optional: skipping signs the new user in', async (t) => {
  const { server, mail } = await serve(t, { 'code-first': { firstFactor: ['email_otp', 'passkey'] } });
  const email = 'sam@acme.example';
  const login = await startLogin(server, 'code-first');
  await login.identify(email);
  const verified = await login.verifyCode(await mailedCode(login, mail, email));
  t.like(verified.body, { step: 'enroll', optional: true, reason: 'signup', methods: ['passkey'] });

  const skipped = await login.skipEnroll();
  t.is(skipped.status, 200, JSON.stringify(skipped.body));
  const { claims } = await login.finish(String(skipped.body.redirect_to));
  t.deepEqual(claims.amr, ['otp']);
  t.is(claims.acr, '0');
  const user = await server.runtime.durable.users.findByEmail('code-first', email);
  t.is(user?.id, claims.sub);
  t.is(await server.runtime.durable.passkeys.countByUser('code-first', claims.sub), 0);
});

test('after an email-code sign-in, a user without a passkey is offered one; skipping finishes the login', async (t) => {
  const { server, mail } = await serve(t, { offer: {} });
  const user = await createUser(server, 'offer', 'olu@acme.example');
  const login = await startLogin(server, 'offer');
  await login.identify(user.email);
  const verified = await login.verifyCode(await mailedCode(login, mail, user.email));
  t.like(verified.body, { step: 'enroll', reason: 'offer', optional: true, methods: ['passkey'] });

  const skipped = await login.skipEnroll();
  t.is(skipped.status, 200, JSON.stringify(skipped.body));
  const { claims } = await login.finish(String(skipped.body.redirect_to));
  t.is(claims.sub, user.id);
  t.deepEqual(claims.amr, ['otp']);
  t.is(await server.runtime.durable.passkeys.countByUser('offer', user.id), 0);
});

test('accepting the offer stores the passkey under a default name and finishes the login', async (t) => {
  const { server, mail } = await serve(t, { 'offer-accept': {} });
  const cases = [
    {
      email: 'hello@acme.example',
      authenticator: new SoftAuthenticator({ aaguid: '08987058-cadc-4b81-b6e1-30de50dcbe96' }),
      name: undefined,
      expected: 'Windows Hello',
    },
    {
      email: 'plain@acme.example',
      authenticator: new SoftAuthenticator(),
      name: undefined,
      expected: 'Passkey on this device',
    },
    {
      email: 'named@acme.example',
      authenticator: new SoftAuthenticator(),
      name: 'Work laptop',
      expected: 'Work laptop',
    },
  ];
  for (const { email, authenticator, name, expected } of cases) {
    const user = await createUser(server, 'offer-accept', email);
    const login = await startLogin(server, 'offer-accept');
    await login.identify(email);
    const verified = await login.verifyCode(await mailedCode(login, mail, email));
    t.like(verified.body, { step: 'enroll', reason: 'offer' });
    const options = await login.registerOptions();
    t.is(options.status, 200);
    t.deepEqual(options.body.excludeCredentials, []);
    t.is(options.body.user.name, `${email} (Acme)`);
    const registered = await login.registerVerify(
      authenticator.register(options.body as never, server.url),
      name,
    );
    t.is(registered.status, 200, JSON.stringify(registered.body));
    const { claims } = await login.finish(String(registered.body.redirect_to));
    t.is(claims.sub, user.id);
    t.deepEqual(claims.amr, ['otp'], 'creating a passkey does not raise the sign-in it follows');

    const passkeys = await server.runtime.durable.passkeys.listByUser('offer-accept', user.id);
    t.deepEqual(
      passkeys.map((passkey) => [passkey.credentialId, passkey.name]),
      [[authenticator.credentials[0]?.id.toString('base64url'), expected]],
    );
  }

  // The new passkey signs its owner in.
  const { login, answer } = await passkeySignIn(server, 'offer-accept', cases[1]!.authenticator);
  const { claims } = await login.finish(String(answer.body.redirect_to));
  const owner = await server.runtime.durable.users.findByEmail('offer-accept', 'plain@acme.example');
  t.is(owner?.id, claims.sub);
  t.is(claims.acr, 'phrh');
});

test('a passkey that does not count as two factors: the first sign-in enrols another one, later sign-ins use it', async (t) => {
  // passkey_counts_as_two_factors: false, always, and passkeys as the only second factor:
  // one credential can never be both factors, so the user gets a second one.
  const { server, mail } = await serve(t, {
    stepup: {
      secondFactorRequired: 'always',
      passkeyCountsAsTwoFactors: false,
      secondFactor: ['passkey'],
      maxPerUser: 2,
    },
  });
  const first = new SoftAuthenticator();
  const { login: signUpLogin, answer } = await signUp(server, mail, 'stepup', 'max@acme.example', first);
  const { claims } = await signUpLogin.finish(String(answer.body.redirect_to));
  const userId = claims.sub;

  const again = await passkeySignIn(server, 'stepup', first);
  t.like(again.answer.body, { step: 'enroll', reason: 'second_factor', optional: false });
  const options = await again.login.registerOptions();
  t.is(options.status, 200, JSON.stringify(options.body));
  t.deepEqual(
    options.body.excludeCredentials?.map((credential) => credential.id),
    [first.credentials[0]?.id.toString('base64url')],
  );
  const second = new SoftAuthenticator();
  const registered = await again.login.registerVerify(second.register(options.body as never, server.url));
  t.is(registered.status, 200, JSON.stringify(registered.body));
  t.truthy(registered.body.redirect_to);
  t.is(registered.body.recovery_codes, undefined, 'this pool has no recovery codes');
  t.is(await server.runtime.durable.passkeys.countByUser('stepup', userId), 2);

  // With two passkeys, the other one is the second factor: never the same credential twice.
  const third = await passkeySignIn(server, 'stepup', second);
  t.like(third.answer.body, { step: 'second_factor', methods: ['passkey'] });
  const secondOptions = await third.login.passkeyOptions();
  t.deepEqual(
    secondOptions.body.allowCredentials?.map((credential) => credential.id),
    [first.credentials[0]?.id.toString('base64url')],
  );
  const refused = await third.login.post('/passkey/register/options', {});
  t.is(refused.status, 400, 'no enrolment at the limit: registration is out of order');
  const done = await third.login.passkeyVerify(first.authenticate(secondOptions.body as never, server.url));
  const { claims: twice } = await third.login.finish(String(done.body.redirect_to));
  t.deepEqual(twice.amr, ['hwk', 'mfa', 'pop', 'user']);
});

test('a third-party client asks for consent after sign-in; allow completes with a code', async (t) => {
  const { server, mail } = await serve(t, { consent: { firstFactor: ['email_otp'] } });
  const user = await createUser(server, 'consent', 'cho@acme.example');
  const login = await startLogin(server, 'consent', { clientId: 'partner' });
  const early = await login.consent('allow');
  t.is(early.status, 400, 'no consent before sign-in');

  await login.identify(user.email);
  const verified = await login.verifyCode(await mailedCode(login, mail, user.email));
  t.is(verified.status, 200);
  t.like(verified.body, { step: 'consent', client: { id: 'partner', name: 'Partner App' } });
  t.deepEqual(verified.body.scopes, ['openid', 'email']);
  t.is(verified.body.redirect_to, undefined);
  const allowed = await login.consent('allow');
  t.is(allowed.status, 200, JSON.stringify(allowed.body));
  const { claims } = await login.finish(String(allowed.body.redirect_to));
  t.is(claims.sub, user.id);
  t.deepEqual(claims.amr, ['otp']);
});

test('denying consent sends the browser back to the client with access_denied', async (t) => {
  const { server, mail, accounts } = await serve(t, { 'consent-deny': { firstFactor: ['email_otp'] } });
  const user = await createUser(server, 'consent-deny', 'dee@acme.example');
  const login = await startLogin(server, 'consent-deny', { clientId: 'partner' });
  await login.identify(user.email);
  const verified = await login.verifyCode(await mailedCode(login, mail, user.email));
  t.is(verified.body.step, 'consent');
  const before = await accounts('consent-deny');
  const denied = await login.consent('deny');
  t.is(denied.status, 200, JSON.stringify(denied.body));
  const callback = await login.followToApp(String(denied.body.redirect_to));
  t.is(`${callback.origin}${callback.pathname}`, REDIRECT);
  t.is(callback.searchParams.get('error'), 'access_denied');
  t.is(callback.searchParams.get('code'), null);
  t.truthy(callback.searchParams.get('state'));
  t.deepEqual(await accounts('consent-deny'), before, 'no grant was stored');
});

test('a first-party client never sees the consent step', async (t) => {
  const { server, mail } = await serve(t, { 'first-party': { firstFactor: ['email_otp'] } });
  const user = await createUser(server, 'first-party', 'fay@acme.example');
  const login = await startLogin(server, 'first-party', { clientId: 'web' });
  await login.identify(user.email);
  const verified = await login.verifyCode(await mailedCode(login, mail, user.email));
  t.is(verified.status, 200);
  t.deepEqual(Object.keys(verified.body), ['redirect_to']);
  const { claims } = await login.finish(String(verified.body.redirect_to));
  t.is(claims.sub, user.id);
});

test('abort sends the browser back to the client with access_denied', async (t) => {
  const { server, accounts } = await serve(t, { abort: {} });
  const before = await accounts('abort');
  const login = await startLogin(server, 'abort');
  await login.identify('quitter@acme.example');
  const aborted = await login.abort();
  t.is(aborted.status, 200, JSON.stringify(aborted.body));
  const callback = await login.followToApp(String(aborted.body.redirect_to));
  t.is(`${callback.origin}${callback.pathname}`, REDIRECT);
  t.is(callback.searchParams.get('error'), 'access_denied');
  t.is(callback.searchParams.get('code'), null);
  t.deepEqual(await accounts('abort'), before);
});

test('the interaction cookie binds every call', async (t) => {
  const { server } = await serve(t, { cookies: {} });
  const a = await startLogin(server, 'cookies');
  const b = await startLogin(server, 'cookies');
  const statuses: number[] = [];
  const call = async (browser: Browserless, url: string, init: RequestInit & { json?: unknown } = {}) => {
    const response = await browser.fetch(url, { headers: { accept: 'application/json' }, ...init });
    statuses.push(response.status);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  // No cookie at all: a fresh browser.
  const stranger = new Browserless();
  const noCookiePost = await call(stranger, `${a.base}/identify`, {
    method: 'POST',
    json: { email: 'x@acme.example' },
  });
  t.is(noCookiePost.status, 400);
  t.is(noCookiePost.body.error, 'interaction_expired');
  const noCookieGet = await call(stranger, `${a.base}/state`);
  t.is(noCookieGet.status, 400);
  t.is(noCookieGet.body.error, 'interaction_expired');

  // B's cookie on A's URL: refused, and neither interaction changes.
  const bCookie = b.browser.cookieHeader(new URL(`${b.base}/identify`));
  t.true(bCookie.length > 0);
  const crossed = await call(new Browserless(), `${a.base}/identify`, {
    method: 'POST',
    json: { email: 'mallory@acme.example' },
    headers: { cookie: bCookie, accept: 'application/json' },
  });
  t.is(crossed.status, 400);
  t.is(crossed.body.error, 'interaction_expired');
  t.like((await b.state()).body, { step: 'identify' });
  t.is((await b.state()).body.email, undefined);
  t.is((await a.state()).body.email, undefined);

  // Another site posting with the victim's cookie.
  const crossOrigin = await call(a.browser, `${a.base}/identify`, {
    method: 'POST',
    json: { email: 'mallory@acme.example' },
    headers: { origin: 'https://evil.example', accept: 'application/json' },
  });
  t.is(crossOrigin.status, 403);
  t.is(crossOrigin.body.error, 'invalid_origin');
  t.is((await a.state()).body.email, undefined);

  t.true(
    statuses.every((status) => status < 500),
    JSON.stringify(statuses),
  );
  // The rightful browser still works.
  t.is((await a.identify('ann@acme.example')).status, 200);
});

test('sign-up and sign-in leave success events with user, client address and user agent', async (t) => {
  const { server, mail } = await serve(t, { audit: {} });
  const userAgent = 'PosternLoginTest/1.0 (audit)';
  const authenticator = new SoftAuthenticator();
  const { login, answer } = await signUp(server, mail, 'audit', 'aud@acme.example', authenticator, {
    browser: new TaggedBrowser({ 'user-agent': userAgent }),
  });
  const { claims } = await login.finish(String(answer.body.redirect_to));
  const signedIn = await passkeySignIn(server, 'audit', authenticator, {
    browser: new TaggedBrowser({ 'user-agent': userAgent }),
  });
  t.truthy(signedIn.answer.body.redirect_to);

  const events = (await server.runtime.durable.auditEvents.list('audit')).reverse();
  t.deepEqual(
    events.map((event) => [event.event, event.outcome]),
    [
      ['sign_up', 'success'],
      ['passkey_registration', 'success'],
      ['sign_in', 'success'],
      ['sign_in', 'success'],
    ],
  );
  const credentialId = authenticator.credentials[0]?.id.toString('base64url');
  for (const event of events) {
    t.is(event.userId, claims.sub, event.event);
    t.true(
      ['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(String(event.ip)),
      `${event.event}: ip ${event.ip}`,
    );
    t.is(event.userAgent, userAgent, event.event);
  }
  t.is(events[0]?.credentialId, credentialId);
  t.is(events[1]?.credentialId, credentialId);
  t.like(events[2]?.detail, { amr: ['otp'], acr: '0' });
  t.like(events[3]?.detail, { amr: ['hwk', 'mfa', 'pop', 'user'], acr: 'phrh' });
});

test('the audited client address is the socket’s, or with trust_proxy the hop the proxy appended', async (t) => {
  const { fixture } = t.context;
  const wrongCodeFrom = async (trustProxy: boolean, forwardedFor: string) => {
    const pool = poolFile({});
    const { server } = await fixture.start(t, { acme: pool }, { server: `trust_proxy: ${trustProxy}\n` });
    const login = await startLogin(server, 'acme', {
      browser: new TaggedBrowser({ 'x-forwarded-for': forwardedFor }),
    });
    const email = `addr-${trustProxy}@acme.example`;
    await login.identify(email);
    await login.sendCode();
    await login.verifyCode(otherCode(await fixture.mail.nextCode(email)));
    const events = await server.runtime.durable.auditEvents.list('acme', { event: 'sign_in' });
    return events.find((event) => event.detail?.interaction === login.uid)?.ip;
  };
  // A client's own X-Forwarded-For is not believed without a trusted proxy...
  t.regex((await wrongCodeFrom(false, '6.6.6.6')) ?? '', /127\.0\.0\.1$/);
  // ...and behind one, only the address that proxy appended counts, not what the client wrote before it.
  t.is(await wrongCodeFrom(true, '6.6.6.6, 203.0.113.9'), '203.0.113.9');
});
