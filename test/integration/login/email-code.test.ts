/**
 * Email codes through the interaction API, as a user and as an attacker see
 * them: six digits by SMTP, one use, five tries, ten minutes, bound to one
 * interaction, rate limited per address and per client, and malformed input
 * refused without side effects.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { probePostgres, probeRedis, serviceTest } from '../../support/services.ts';
import {
  createUser,
  type LoginFixture,
  mailedCode,
  openLoginFixture,
  otherCode,
  poolFile,
  postJson,
  rawPost,
  receivedMail,
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

/**
 * A server with one pool `poolId` whose only first factor is the email code
 * (so a right code finishes the login at once) and one existing user.
 */
async function setup(t: ExecutionContext<Context>, poolId: string, email = `${poolId}@acme.example`) {
  const { fixture } = t.context;
  const started = await fixture.start(t, { [poolId]: poolFile({ firstFactor: ['email_otp'] }) });
  const user = await createUser(started.server, poolId, email);
  return { ...started, user, email, mail: fixture.mail, accounts: () => fixture.accounts(poolId) };
}

test('mails a 6-digit code that signs an existing user in with amr otp and acr 0', async (t) => {
  const { server, mail, user, email } = await setup(t, 'sign-in');
  const login = await startLogin(server, 'sign-in');
  t.is((await login.identify(email)).status, 200);
  const sent = await login.sendCode();
  t.is(sent.status, 200);
  t.like(sent.body, { step: 'first_factor', methods: ['email_otp'], code_sent: true });

  const message = await mail.next(email);
  t.deepEqual(message.to, [email]);
  const code =
    /\b(\d{6})\b/.exec(
      message.raw
        .split(/\r?\n\r?\n/)
        .slice(1)
        .join('\n'),
    )?.[1] ?? '';
  t.regex(code, /^\d{6}$/);

  const verified = await login.verifyCode(code);
  t.is(verified.status, 200, JSON.stringify(verified.body));
  const { claims } = await login.finish(String(verified.body.redirect_to));
  t.is(claims.sub, user.id);
  t.deepEqual(claims.amr, ['otp']);
  t.is(claims.acr, '0');
});

test('a code works once: the same code again is refused', async (t) => {
  const { server, mail, email, accounts } = await setup(t, 'once');
  const login = await startLogin(server, 'once');
  await login.identify(email);
  const code = await mailedCode(login, mail, email);
  const first = await login.verifyCode(code);
  t.is(first.status, 200, JSON.stringify(first.body));

  const before = await accounts();
  const again = await login.verifyCode(code);
  t.is(again.status, 400);
  t.is(again.body.error, 'invalid_code');
  t.deepEqual(await accounts(), before);

  // The refused replay did not spoil the login it tried to ride on.
  const { claims } = await login.finish(String(first.body.redirect_to));
  t.deepEqual(claims.amr, ['otp']);
});

test('of five concurrent uses of the right code, exactly one signs in', async (t) => {
  const { server, mail, email, user } = await setup(t, 'race');
  const login = await startLogin(server, 'race');
  await login.identify(email);
  const code = await mailedCode(login, mail, email);

  const answers = await Promise.all(Array.from({ length: 5 }, () => login.verifyCode(code)));
  const won = answers.filter((answer) => answer.status === 200);
  const lost = answers.filter((answer) => answer.status !== 200);
  t.is(won.length, 1, JSON.stringify(answers));
  t.true(lost.every((answer) => answer.status === 400 && answer.body.error === 'invalid_code'));

  const signIns = await server.runtime.durable.auditEvents.list('race', { event: 'sign_in' });
  t.is(signIns.filter((event) => event.outcome === 'success').length, 1);
  const { claims } = await login.finish(String(won[0]?.body.redirect_to));
  t.is(claims.sub, user.id);
});

test('five wrong codes are refused, the sixth try is locked even with the right code, a new code works', async (t) => {
  const { server, mail, email, accounts } = await setup(t, 'tries');
  const login = await startLogin(server, 'tries');
  await login.identify(email);
  const code = await mailedCode(login, mail, email);
  const before = await accounts();

  for (let attempt = 1; attempt <= 5; attempt++) {
    const wrong = await login.verifyCode(otherCode(code));
    t.is(wrong.status, 400, `try ${attempt}`);
    t.is(wrong.body.error, 'invalid_code', `try ${attempt}`);
  }
  const locked = await login.verifyCode(code);
  t.is(locked.status, 400);
  t.is(locked.body.error, 'code_locked');
  t.deepEqual(await accounts(), before, 'no try changed the account');
  const refusals = (await server.runtime.durable.auditEvents.list('tries', { event: 'sign_in' }))
    .filter((event) => event.outcome === 'failure' && event.detail?.interaction === login.uid)
    .map((event) => event.detail?.code)
    .reverse();
  t.deepEqual(refusals, [...Array(5).fill('wrong_code'), 'too_many_tries'], 'each try audited with its code');

  const fresh = await mailedCode(login, mail, email);
  const verified = await login.verifyCode(fresh);
  t.is(verified.status, 200, JSON.stringify(verified.body));
  t.truthy(verified.body.redirect_to);
});

test('a new code replaces the previous one', async (t) => {
  const { server, mail, email, accounts } = await setup(t, 'replace');
  const login = await startLogin(server, 'replace');
  await login.identify(email);
  const old = await mailedCode(login, mail, email);
  let current = await mailedCode(login, mail, email);
  // One chance in a million that the new code equals the old one: ask once more.
  if (current === old) current = await mailedCode(login, mail, email);
  t.not(current, old);

  const before = await accounts();
  const stale = await login.verifyCode(old);
  t.is(stale.status, 400);
  t.is(stale.body.error, 'invalid_code');
  t.deepEqual(await accounts(), before);
  const verified = await login.verifyCode(current);
  t.is(verified.status, 200, JSON.stringify(verified.body));
});

test('a code belongs to its interaction: it does not work in another one', async (t) => {
  const { server, mail, email, accounts } = await setup(t, 'bound');
  const a = await startLogin(server, 'bound');
  await a.identify(email);
  const codeA = await mailedCode(a, mail, email);

  // B: same email, once without a code of its own and once with one.
  const b = await startLogin(server, 'bound');
  await b.identify(email);
  const before = await accounts();
  const noCode = await b.verifyCode(codeA);
  t.is(noCode.status, 400);
  t.is(noCode.body.error, 'invalid_code');
  const codeB = await mailedCode(b, mail, email);
  if (codeB !== codeA) {
    const foreign = await b.verifyCode(codeA);
    t.is(foreign.status, 400);
    t.is(foreign.body.error, 'invalid_code');
  }
  t.deepEqual(await accounts(), before);

  // A's code still works where it was mailed, B's where it was.
  t.is((await a.verifyCode(codeA)).status, 200);
  t.is((await b.verifyCode(codeB)).status, 200);
});

test('a code lives ten minutes and only its hash is stored', async (t) => {
  const { server, mail, email, pttl, redisGet } = await setup(t, 'lifetime');
  const login = await startLogin(server, 'lifetime');
  await login.identify(email);
  const code = await mailedCode(login, mail, email);

  const key = `email-code:lifetime:${login.uid}`;
  const ttl = await pttl(key);
  t.true(ttl > 590_000 && ttl <= 600_000, `TTL ${ttl} ms`);
  const stored = (await redisGet(key)) ?? '';
  t.not(stored, '');
  t.false(stored.includes(code), 'the code itself is not kept');
});

test('more than 5 codes to one address within the window answer 429 with Retry-After', async (t) => {
  const { server, mail, email } = await setup(t, 'per-address');
  // Spread over three interactions: the limit is the address's, not the interaction's.
  const logins = await Promise.all([1, 2, 3].map(() => startLogin(server, 'per-address')));
  for (let send = 0; send < 5; send++) {
    const answer = await postJson(logins[Math.floor(send / 2)]!, '/email-otp/send', { email });
    t.is(answer.status, 200, `send ${send + 1}`);
  }
  const refused = await postJson(logins[2]!, '/email-otp/send', { email });
  t.is(refused.status, 429);
  t.is(refused.body.error, 'rate_limited');
  const retryAfter = Number(refused.headers.get('retry-after'));
  t.true(
    Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 15 * 60,
    `Retry-After ${retryAfter}`,
  );

  // Exactly five mails went out: wait for them, then a little longer for a sixth that must not come.
  for (let received = 0; received < 5; received++) await mail.next(email);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(mail.messages.filter((message) => message.to.includes(email)).length, 5);

  // The limit tripping is audited once, not once per refused attempt.
  t.is((await postJson(logins[2]!, '/email-otp/send', { email })).status, 429);
  const events = await server.runtime.durable.auditEvents.list('per-address', { event: 'rate_limited' });
  t.deepEqual(
    events.map((event) => [event.outcome, event.detail?.limit]),
    [['failure', 'email_code_send_pair']],
  );
});

/** A server behind a trusted proxy, so each test browser can come from an address of its own. */
async function setupBehindProxy(t: ExecutionContext<Context>, pools: string[]) {
  const { fixture } = t.context;
  const files = Object.fromEntries(pools.map((id) => [id, poolFile({ firstFactor: ['email_otp'] })]));
  const started = await fixture.start(t, files, { server: 'trust_proxy: true\n' });
  const from = (address: string) => new TaggedBrowser({ 'x-forwarded-for': address });
  return { ...started, mail: fixture.mail, from };
}

test('an attacker draining an email’s codes spends only their own address’s allowance', async (t) => {
  const { server, mail, from } = await setupBehindProxy(t, ['drain']);
  const email = 'victim@drain.example';
  await createUser(server, 'drain', email);
  const attacker = from('198.51.100.7');
  const statuses: number[] = [];
  for (let send = 0; send < 8; send++) {
    const login = await startLogin(server, 'drain', { browser: attacker });
    statuses.push((await postJson(login, '/email-otp/send', { email })).status);
  }
  t.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);

  // The owner, from their own address, still gets a code and signs in.
  const owner = await startLogin(server, 'drain', { browser: from('203.0.113.9') });
  await owner.identify(email);
  for (let sent = 0; sent < 5; sent++) await mail.next(email); // the attacker's five
  const code = await mailedCode(owner, mail, email);
  t.truthy((await owner.verifyCode(code)).body.redirect_to);
});

test('a request refused per client address spends nothing of the email’s budget', async (t) => {
  const { server, from } = await setupBehindProxy(t, ['ip-first']);
  const email = 'victim@ip-first.example';
  const attacker = from('198.51.100.8');
  const login = await startLogin(server, 'ip-first', { browser: attacker });
  for (let send = 1; send <= 20; send++) await login.sendCode(`other-${send}@ip-first.example`);
  // Past the address's limit: 40 more tries at the victim's email, all refused there.
  for (let send = 0; send < 40; send++) {
    t.is((await postJson(login, '/email-otp/send', { email })).status, 429);
  }
  // Had they counted, the email's daily cap (30) would be spent; another address still gets all five.
  for (let send = 0; send < 5; send++) {
    const other = await startLogin(server, 'ip-first', { browser: from('203.0.113.10') });
    t.is((await postJson(other, '/email-otp/send', { email })).status, 200, `send ${send + 1}`);
  }
});

test('a server-wide daily cap per email stops mail bombing across pools and addresses, not the owner’s own browser', async (t) => {
  const { server, mail, from } = await setupBehindProxy(t, ['bomb-a', 'bomb-b']);
  const email = 'victim@bomb.example';
  await createUser(server, 'bomb-a', email);

  // The owner signed in from this browser before: it is a known device of the account.
  const ownerBrowser = from('203.0.113.20');
  const first = await startLogin(server, 'bomb-a', { browser: ownerBrowser });
  await first.identify(email);
  t.truthy((await first.verifyCode(await mailedCode(first, mail, email))).body.redirect_to);

  // 29 more codes from browsers that never signed in (30 a day in all), spread over pools and addresses.
  for (let send = 0; send < 29; send++) {
    const pool = send % 2 === 0 ? 'bomb-a' : 'bomb-b';
    const login = await startLogin(server, pool, { browser: from(`198.51.100.${send % 6}`) });
    t.is((await postJson(login, '/email-otp/send', { email })).status, 200, `send ${send + 1}`);
  }
  const refused = await postJson(
    await startLogin(server, 'bomb-b', { browser: from('198.51.100.99') }),
    '/email-otp/send',
    { email },
  );
  t.is(refused.status, 429);
  t.true(Number(refused.headers.get('retry-after')) > 15 * 60, 'the cap is daily');

  // The owner's browser is not counted against the cap.
  const owner = await startLogin(server, 'bomb-a', { browser: ownerBrowser });
  t.is((await postJson(owner, '/email-otp/send', { email })).status, 200);
});

test('wrong codes for one account are capped per day across addresses; the owner’s known browser keeps its own allowance', async (t) => {
  const { server, mail, from } = await setupBehindProxy(t, ['wrong-cap']);
  const email = 'victim@wrong-cap.example';
  await createUser(server, 'wrong-cap', email);
  const ownerBrowser = from('203.0.113.30');
  const first = await startLogin(server, 'wrong-cap', { browser: ownerBrowser });
  await first.identify(email);
  t.truthy((await first.verifyCode(await mailedCode(first, mail, email))).body.redirect_to);

  // 30 wrong codes from six addresses (five per code, one code each).
  for (let round = 0; round < 6; round++) {
    const login = await startLogin(server, 'wrong-cap', { browser: from(`198.51.100.${40 + round}`) });
    const code = await mailedCode(login, mail, email);
    for (let attempt = 0; attempt < 5; attempt++) {
      t.is((await login.verifyCode(otherCode(code))).status, 400);
    }
  }
  // A fresh address with the right code is now refused: the account's day of guesses is spent.
  const late = await startLogin(server, 'wrong-cap', { browser: from('198.51.100.60') });
  const code = await mailedCode(late, mail, email);
  const refused = await postJson(late, '/email-otp/verify', { code });
  t.is(refused.status, 429);
  t.is(refused.body.error, 'rate_limited');
  const events = await server.runtime.durable.auditEvents.list('wrong-cap', { event: 'rate_limited' });
  t.true(events.some((event) => event.detail?.limit === 'email_code_wrong_daily'));

  // The owner's browser still signs in with its code.
  const owner = await startLogin(server, 'wrong-cap', { browser: ownerBrowser });
  t.truthy((await owner.verifyCode(await mailedCode(owner, mail, email))).body.redirect_to);
});

test('more than 20 codes requested from one client address answer 429', async (t) => {
  const { server } = await setup(t, 'per-client');
  const login = await startLogin(server, 'per-client');
  for (let send = 1; send <= 20; send++) {
    const answer = await login.sendCode(`person-${send}@per-client.example`);
    t.is(answer.status, 200, `send ${send}`);
  }
  const refused = await postJson(login, '/email-otp/send', { email: 'person-21@per-client.example' });
  t.is(refused.status, 429);
  t.is(refused.body.error, 'rate_limited');
  t.true(Number(refused.headers.get('retry-after')) > 0);
  t.false(await receivedMail(t.context.fixture.mail, 'person-21@per-client.example'));
});

test('more than 30 wrong codes across interactions from one client address answer 429, even for the right code', async (t) => {
  const { server, mail, email, accounts } = await setup(t, 'guessing');
  const wrongAnswers: number[] = [];
  for (let round = 1; round <= 6; round++) {
    const login = await startLogin(server, 'guessing');
    const target = `guess-${round}@guessing.example`;
    const code = await mailedCode(login, mail, target);
    for (let attempt = 0; attempt < 5; attempt++) {
      wrongAnswers.push((await login.verifyCode(otherCode(code))).status);
    }
  }
  t.deepEqual(wrongAnswers, Array(30).fill(400));

  const login = await startLogin(server, 'guessing');
  await login.identify(email);
  const code = await mailedCode(login, mail, email);
  const before = await accounts();
  const refused = await postJson(login, '/email-otp/verify', { code });
  t.is(refused.status, 429);
  t.is(refused.body.error, 'rate_limited');
  t.true(Number(refused.headers.get('retry-after')) > 0);
  t.deepEqual(await accounts(), before, 'no sign-up and no sign-in');
});

test('malformed input answers 4xx and changes nothing', async (t) => {
  const { server, mail, email, accounts, pttl } = await setup(t, 'malformed');
  const login = await startLogin(server, 'malformed');
  await login.identify(email);
  const code = await mailedCode(login, mail, email);
  const before = await accounts();

  const cases: Array<[string, { body: string; contentType?: string }, number]> = [
    ['a 5-digit code', { body: JSON.stringify({ code: code.slice(1) }) }, 400],
    ['a 7-digit code', { body: JSON.stringify({ code: `${code}0` }) }, 400],
    ['letters', { body: JSON.stringify({ code: 'abcdef' }) }, 400],
    ['a number instead of a string', { body: JSON.stringify({ code: Number(`1${code}`) }) }, 400],
    ['an unknown key', { body: JSON.stringify({ code, admin: true }) }, 400],
    ['no code', { body: '{}' }, 400],
    ['an array', { body: JSON.stringify([code]) }, 400],
    ['text/plain', { body: JSON.stringify({ code }), contentType: 'text/plain' }, 415],
    ['a form post', { body: `code=${code}`, contentType: 'application/x-www-form-urlencoded' }, 415],
    ['a body over 64 KB', { body: JSON.stringify({ code, padding: 'x'.repeat(70 * 1024) }) }, 413],
  ];
  for (const [name, request, status] of cases) {
    const answer = await rawPost(login, '/email-otp/verify', request);
    t.is(answer.status, status, `${name}: ${JSON.stringify(answer.body)}`);
    t.is(typeof answer.body.error, 'string', name);
  }
  const identify = await rawPost(login, '/identify', { body: JSON.stringify({ email: 'not an email' }) });
  t.is(identify.status, 400);

  t.deepEqual(await accounts(), before);
  t.is(await pttl(`email-code-tries:malformed:${login.uid}`), -2, 'no malformed request counted as a try');
  const verified = await login.verifyCode(code);
  t.is(verified.status, 200, 'the code is still good after all that');
});

test('invalid JSON answers 400, never 5xx, and changes nothing', async (t) => {
  const { server, mail, email, accounts, pttl } = await setup(t, 'bad-json');
  const login = await startLogin(server, 'bad-json');
  await login.identify(email);
  const code = await mailedCode(login, mail, email);
  const before = await accounts();

  const bodies = [
    `{"code": "${code}"`, // truncated
    `{"code": '${code}'}`, // single quotes
    `"${code}"`, // a bare string: not an object
    `{"code": "${code}", "__proto__": {"admin": true}}`, // prototype poisoning
  ];
  const answers = [];
  for (const body of bodies) {
    const { status, body: answer } = await rawPost(login, '/email-otp/verify', { body });
    answers.push({ body, status, error: answer.error });
  }
  t.deepEqual(
    answers,
    bodies.map((body) => ({ body, status: 400, error: 'invalid_request' })),
  );

  t.deepEqual(await accounts(), before);
  t.is(await pttl(`email-code-tries:bad-json:${login.uid}`), -2, 'no invalid body counted as a try');
  t.is((await login.verifyCode(code)).status, 200, 'the code is still good');
});

test('signing up with an email that has an account codes cannot open: the answer is the same, the mailbox is told', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { 'passkey-only': poolFile({ firstFactor: ['passkey'] }) });
  const email = 'lost-passkey@passkey-only.example';
  await createUser(server, 'passkey-only', email);
  const known = await startLogin(server, 'passkey-only');
  const unknown = await startLogin(server, 'passkey-only');
  const knownAnswer = await known.sendCode(email);
  const unknownAnswer = await unknown.sendCode('newcomer@passkey-only.example');
  t.deepEqual(withoutEmail(knownAnswer.body), withoutEmail(unknownAnswer.body), 'nothing tells them apart');

  const message = await fixture.mail.next(email);
  t.regex(message.raw, /already have/);
  t.notRegex(message.raw.replace(/^[\s\S]*?\r?\n\r?\n/, ''), /\b\d{6}\b/, 'no code in it');
  await fixture.mail.next('newcomer@passkey-only.example');
});
