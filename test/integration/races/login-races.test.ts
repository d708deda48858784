/**
 * The login side's "exactly one wins" rules (issue 12, Races), each under 50
 * tries at once from separate clients (./race-clients.ts: a cookie jar, a
 * connection and a 127/8 source address of their own, so no per-address
 * limit refuses a try): one passkey assertion, one email code, one recovery
 * code, one enrolment link, one email signing up, and the last of two
 * passkeys removed from two sessions. Each test asserts what the clients see
 * (one success; every other answer a clean 4xx with its code, never a 5xx)
 * and what the stores hold afterwards (rows, counters, audit trail).
 *
 * "The same interaction from 50 clients" is its Cookie header sent by 50
 * fresh clients; "50 interactions" are 50 clients that each went through the
 * steps before the race. Limits that would cap only that setup (the mails one
 * email or one link may get) are reset through the server's own limiter
 * between batches of mails: they are not what these tests are about. A limit that
 * applies during a race (recovery codes per account) is part of the outcome
 * and asserted as such.
 *
 * The tests run one at a time, each on a server of its own with ten database
 * connections (the login fixture's servers have two), so each race meets the
 * stores with real parallelism and the machine to itself.
 */
import { createHash } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import pg from 'pg';
import { LINK_CODE_LIMIT } from '../../../src/enrollment/enrollment-flow.ts';
import { tokenHashOf } from '../../../src/enrollment/enrollment-links.ts';
import { limitRule, RATE_LIMITS } from '../../../src/interactions/rate-limits.ts';
import type { RateLimitRule } from '../../../src/storage/types.ts';
import { Browserless } from '../../support/browserless.ts';
import { startTestServer, type TestServer } from '../../support/postern-server.ts';
import { deleteKeysWithPrefix, redisTestUrl, uniqueKeyPrefix } from '../../support/services.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { adminCall, machineToken } from '../admin/admin-client.ts';
import {
  createUser,
  type LoginFixture,
  loginTests,
  mailedCode,
  passkeySignIn,
  poolFile,
  REDIRECT,
  signUp,
  startLogin,
} from '../login/login-fixture.ts';
import { callJson, cookieOf, type RaceAnswer, separateClients, statusCounts } from './race-clients.ts';

const test = await loginTests();

type Context = ExecutionContext<{ fixture: LoginFixture }>;

/** Tries per race. */
const TRIES = 50;

/** A server for one test on the file's database and mail sink, with a Redis prefix of its own. */
async function serve(t: Context, pools: Record<string, string>): Promise<TestServer> {
  const { fixture } = t.context;
  const prefix = uniqueKeyPrefix();
  const server = await startTestServer({
    pools,
    server: 'database:\n  pool_max: 10\n',
    databaseUrl: fixture.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    env: { SMTP_URL: fixture.mail.url },
  });
  t.teardown(async () => {
    await server.stop();
    await deleteKeysWithPrefix(prefix);
  });
  return server;
}

/** Forgets what `rule` counted for `key`, through the server's own limiter (same store, same keys). */
const resetLimit = (server: TestServer, rule: RateLimitRule, key: string) =>
  server.runtime.ephemeral.rateLimiter(rule).reset(key);

/** The pool's audit events `event` with `outcome`, newest first; `interaction`: of that login only. */
async function audited(
  server: TestServer,
  poolId: string,
  event: string,
  outcome: 'success' | 'failure',
  { interaction }: { interaction?: string } = {},
) {
  const events = await server.runtime.durable.auditEvents.list(poolId, { event, limit: 1000 });
  return events.filter(
    (entry) =>
      entry.outcome === outcome && (interaction === undefined || entry.detail?.interaction === interaction),
  );
}

/** One query on the file's database. */
async function query<Row extends Record<string, unknown>>(t: Context, text: string, values: unknown[]) {
  const client = new pg.Client({ connectionString: t.context.fixture.database.url });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Asserts that every refusal among `answers` is JSON whose `error` is one of `codes`, with a description. */
function assertRefusals(t: Context, answers: RaceAnswer[], codes: readonly string[]) {
  for (const lost of answers.filter((answer) => answer.status >= 400)) {
    t.true(codes.includes(lost.body?.error), JSON.stringify(lost));
    t.is(typeof lost.body?.error_description, 'string', JSON.stringify(lost));
  }
}

/**
 * Asserts the race's tally of statuses and its refusals (`assertRefusals`);
 * returns the one answer that won.
 */
function assertRace(
  t: Context,
  answers: RaceAnswer[],
  expected: Record<number, number>,
  codes: readonly string[],
): RaceAnswer {
  const tally = statusCounts(answers);
  const odd = answers.filter((answer) => !(answer.status in expected));
  t.deepEqual(tally, expected, `answers: ${JSON.stringify(tally)}; unexpected: ${JSON.stringify(odd)}`);
  assertRefusals(t, answers, codes);
  const [won] = answers.filter((answer) => answer.status < 300);
  if (!won) throw new Error(`no try won: ${JSON.stringify(tally)}`);
  return won;
}

// ------------------------------------------------------------------ passkey assertion

test.serial('of one passkey assertion sent 50 times at once, one signs in', async (t) => {
  const poolId = 'race-passkey';
  const server = await serve(t, { [poolId]: poolFile() });
  const { durable } = server.runtime;
  const email = `ada@${poolId}.example`;
  const authenticator = new SoftAuthenticator();
  await signUp(server, t.context.fixture.mail, poolId, email, authenticator);
  const user = await durable.users.findByEmail(poolId, email);
  const [before] = await durable.passkeys.listByUser(poolId, user?.id ?? '');
  t.like(before, { counter: 0, lastUsedAt: null });

  const login = await startLogin(server, poolId);
  const options = await login.passkeyOptions();
  const response = authenticator.authenticate(options.body as never, server.url);
  const url = `${login.base}/passkey/verify`;
  const cookie = cookieOf(login.browser, url);
  const started = Date.now();
  const answers = await Promise.all(
    separateClients(t, TRIES).map((client) =>
      callJson(client, url, { json: { response }, headers: { cookie } }),
    ),
  );

  const won = assertRace(t, answers, { 200: 1, 400: TRIES - 1 }, ['passkey_rejected']);
  t.is(typeof won.body.redirect_to, 'string', JSON.stringify(won.body));
  for (const lost of answers.filter((answer) => answer.status === 400)) {
    t.deepEqual(Object.keys(lost.body).sort(), ['error', 'error_description'], 'the refusal names no reason');
  }

  const [after] = await durable.passkeys.listByUser(poolId, user?.id ?? '');
  t.is(after?.counter, 1, 'the counter moved once');
  t.true((after?.lastUsedAt?.getTime() ?? 0) >= started - 1_000, 'the last use is this race');
  t.is((await audited(server, poolId, 'sign_in', 'success', { interaction: login.uid })).length, 1);
  const refusals = await audited(server, poolId, 'sign_in', 'failure', { interaction: login.uid });
  t.deepEqual(
    refusals.map((entry) => entry.detail?.code),
    Array(TRIES - 1).fill('challenge_missing'),
    'every loser found the challenge taken',
  );
  t.is(
    new Set(refusals.map((entry) => entry.ip)).size,
    TRIES - 1,
    'each try came from an address of its own',
  );

  const { claims } = await login.finish(String(won.body.redirect_to));
  t.is(claims.sub, user?.id ?? '', 'the winner’s redirect signs the user in');
});

// ------------------------------------------------------------------ email code

/** Past five tries a code is refused without being destroyed, so one of the first five takes it. */
test.serial('of one email code sent 50 times at once, one signs in', async (t) => {
  const poolId = 'race-code';
  const server = await serve(t, { [poolId]: poolFile({ firstFactor: ['email_otp'] }) });
  const email = `bo@${poolId}.example`;
  const user = await createUser(server, poolId, email);
  const login = await startLogin(server, poolId);
  await login.identify(email);
  const code = await mailedCode(login, t.context.fixture.mail, email);

  const url = `${login.base}/email-otp/verify`;
  const cookie = cookieOf(login.browser, url);
  const answers = await Promise.all(
    separateClients(t, TRIES).map((client) => callJson(client, url, { json: { code }, headers: { cookie } })),
  );

  const won = assertRace(t, answers, { 200: 1, 400: TRIES - 1 }, ['invalid_code', 'code_locked']);
  t.is((await audited(server, poolId, 'sign_in', 'success', { interaction: login.uid })).length, 1);
  const { claims } = await login.finish(String(won.body.redirect_to));
  t.is(claims.sub, user.id);
  t.deepEqual(claims.amr, ['otp']);
});

// ------------------------------------------------------------------ recovery code

const PASSWORD = 'correct horse battery';

/**
 * Password first, then a passkey or a recovery code, always. The account's password limit counts
 * every attempt until one succeeds: at its default (10) it would pause some of the 50 logins.
 */
const recoveryPool = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [password]
  second_factor: [passkey, recovery_code]
  second_factor_required: always
  password:
    max_failures: 100
    argon2: { memory_kib: 8192, iterations: 1 }
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

test.serial('one recovery code sent from 50 logins of its user at once is accepted once', async (t) => {
  const poolId = 'race-recovery';
  const server = await serve(t, { [poolId]: recoveryPool });
  const { mail } = t.context.fixture;
  const email = `cy@${poolId}.example`;

  // Sign-up: email code, password, then a passkey as second factor, which brings the recovery codes.
  const signingUp = await startLogin(server, poolId);
  await signingUp.identify(email);
  await signingUp.sendCode();
  await signingUp.verifyCode(await mail.nextCode(email));
  await signingUp.post('/password', { password: PASSWORD });
  const registerOptions = await signingUp.registerOptions();
  const registered = await signingUp.registerVerify(
    new SoftAuthenticator().register(registerOptions.body as never, server.url),
  );
  const codes = registered.body.recovery_codes as string[];
  t.is(codes.length, 10, JSON.stringify(registered.body));
  const userId = (await server.runtime.durable.users.findByEmail(poolId, email))?.id ?? '';

  // 50 logins of the user, each from its own client, each at the second-factor step.
  const logins = await Promise.all(
    separateClients(t, TRIES).map(async (browser) => {
      const login = await startLogin(server, poolId, { browser });
      await login.identify(email);
      const first = await login.post('/password', { password: PASSWORD });
      t.like(
        first.body,
        { step: 'second_factor', methods: ['passkey', 'recovery_code'] },
        JSON.stringify(first),
      );
      return login;
    }),
  );
  const answers = await Promise.all(logins.map((login) => login.post('/recovery-code', { code: codes[0] })));

  // Ten tries a quarter hour per account (recovery_code_user) reach the code; one of them gets it.
  const reached = RATE_LIMITS.recovery_code_user.points;
  const won = assertRace(t, answers, { 200: 1, 400: reached - 1, 429: TRIES - reached }, [
    'invalid_code',
    'rate_limited',
  ]);
  t.like(won.body, { step: 'enroll', reason: 'recovery', recovery_codes_remaining: 9 });
  t.true(
    answers.every((answer) => answer.status !== 400 || answer.body.error === 'invalid_code'),
    'a reached code that lost is invalid_code',
  );

  const rows = await query<{ used: number; total: number }>(
    t,
    `select count(*) filter (where used_at is not null)::int as used, count(*)::int as total
       from recovery_codes where pool_id = $1 and user_id = $2`,
    [poolId, userId],
  );
  t.deepEqual(rows, [{ used: 1, total: 10 }], 'one row used');
  t.is(await server.runtime.durable.recoveryCodes.countUnused(poolId, userId), 9);
  t.is((await audited(server, poolId, 'recovery_code_used', 'success')).length, 1);
  const refusals = await audited(server, poolId, 'sign_in', 'failure');
  t.deepEqual(
    refusals.map((entry) => entry.detail?.code),
    Array(reached - 1).fill('unknown_or_used_code'),
  );
});

// ------------------------------------------------------------------ enrolment link

const ADMIN_SECRET = 'admin-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

/** Invite-only, passkeys only, with an operator's machine client. */
const invitePool = `
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
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
  - client_id: ops
    client_secret: ${ADMIN_SECRET}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: admin
`;

/**
 * Where the enrolment code a browser asked for is kept (src/factors/email-code/email-code-store.ts,
 * bound to `enroll:{link}:{browser}` by src/enrollment/enrollment-flow.ts), the browser being its
 * enrolment cookie.
 */
function enrollmentCodeKey(poolId: string, tokenHash: string, browser: Browserless, linkUrl: string) {
  const cookie = /(?:^|; )postern_enroll=([^;]+)/.exec(cookieOf(browser, linkUrl))?.[1];
  if (!cookie) throw new Error('the browser has no enrolment cookie');
  return `email-code:${poolId}:enroll:${tokenHash}:${cookie}`;
}

test.serial('one enrolment link redeemed from 50 browsers at once stores one passkey', async (t) => {
  const poolId = 'race-link';
  const server = await serve(t, { [poolId]: invitePool });
  const { durable } = server.runtime;
  const { mail } = t.context.fixture;
  const email = `dee@${poolId}.example`;
  const token = await machineToken(server, poolId, { clientId: 'ops', secret: ADMIN_SECRET });
  const created = await adminCall(server, poolId, token, 'POST', 'users', { email });
  const userId = String(created.body.id);
  const issued = await adminCall(server, poolId, token, 'POST', `users/${userId}/enrollment-link`, {});
  t.is(issued.status, 201, JSON.stringify(issued.body));
  const linkUrl = String(issued.body.url);
  const tokenHash = tokenHashOf(linkUrl.split('/').pop() ?? '');
  await mail.next(email);

  // 50 browsers open the link and prove the email, each with a code of its own.
  const origin = new URL(server.url).origin;
  const call = (browser: Browserless, path: string, json: unknown) =>
    callJson(browser, `${linkUrl}/${path}`, { json, headers: { origin } });
  const browsers = separateClients(t, TRIES);
  const opened = await Promise.all(
    browsers.map((browser) => browser.fetch(linkUrl, { headers: { accept: 'text/html' } })),
  );
  t.true(opened.every((page) => page.status === 200));
  // Five mails per link a quarter hour and 30 per email a day: caps on mailing, reset between batches.
  for (let first = 0; first < TRIES; first += LINK_CODE_LIMIT.points) {
    await resetLimit(server, LINK_CODE_LIMIT, tokenHash);
    await resetLimit(server, limitRule('email_code_send_daily'), email);
    const batch = browsers.slice(first, first + LINK_CODE_LIMIT.points);
    const sent = await Promise.all(batch.map((browser) => call(browser, 'code/send', {})));
    t.true(
      sent.every((answer) => answer.status === 200),
      JSON.stringify(sent.map((answer) => answer.body)),
    );
  }
  // The mails do not say which browser asked: each code goes to the browser whose stored code it hashes to.
  const mailed = await Promise.all(browsers.map(() => mail.nextCode(email)));
  const byHash = new Map(mailed.map((code) => [createHash('sha256').update(code).digest('base64url'), code]));
  await Promise.all(
    browsers.map(async (browser) => {
      const stored = await server.runtime.ephemeral.get(
        enrollmentCodeKey(poolId, tokenHash, browser, linkUrl),
      );
      const code = byHash.get((JSON.parse(stored ?? '{}') as { hash?: string }).hash ?? '') ?? '';
      const proven = await call(browser, 'code/verify', { code });
      t.like(proven.body, { step: 'create_passkey' }, JSON.stringify(proven));
    }),
  );
  const attempts = await Promise.all(
    browsers.map(async (browser) => {
      const options = await call(browser, 'passkey/options', {});
      t.is(options.status, 200, JSON.stringify(options.body));
      const authenticator = new SoftAuthenticator();
      return { browser, authenticator, response: authenticator.register(options.body, server.url) };
    }),
  );
  const answers = await Promise.all(
    attempts.map(({ browser, response }) => call(browser, 'passkey/verify', { response })),
  );

  const won = assertRace(t, answers, { 200: 1, 410: TRIES - 1 }, ['enrollment_link_invalid']);
  const winner = attempts[answers.indexOf(won)];
  const passkeys = await durable.passkeys.listByUser(poolId, userId);
  t.deepEqual(
    passkeys.map((passkey) => passkey.credentialId),
    [winner?.response.id],
    'one passkey, the winner’s',
  );
  t.truthy((await durable.enrollmentLinks.find(poolId, tokenHash))?.usedAt, 'the link is used');
  t.is((await audited(server, poolId, 'passkey_registration', 'success')).length, 1);

  const { answer } = await passkeySignIn(server, poolId, winner?.authenticator ?? new SoftAuthenticator());
  t.truthy(answer.body.redirect_to, 'the stored passkey signs in');
});

// ------------------------------------------------------------------ sign-up

/** Open sign-up, passkeys and email codes; codes come as links, which name their interaction. */
const signUpPool = `
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  email_otp:
    delivery: link
registration:
  mode: open
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

/** The interaction and code an email link carries (quoted-printable undone). */
function linkCodeIn(raw: string): { uid: string; code: string } {
  const text = raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  const found = /\/interaction\/([^/\s]+)\/email-link#code=(\d{6})/.exec(text);
  if (!found?.[1] || !found[2]) throw new Error(`no email link in: ${text.slice(0, 400)}`);
  return { uid: found[1], code: found[2] };
}

test.serial('50 sign-ups of one email finishing at once make one account', async (t) => {
  const poolId = 'race-signup';
  const server = await serve(t, { [poolId]: signUpPool });
  const { fixture } = t.context;
  const email = `eve@${poolId}.example`;

  const logins = await Promise.all(
    separateClients(t, TRIES).map(async (browser) => {
      const login = await startLogin(server, poolId, { browser });
      await login.identify(email);
      return login;
    }),
  );
  // 30 codes a day for one email from browsers it never signed in from: reset between two halves.
  for (const half of [logins.slice(0, TRIES / 2), logins.slice(TRIES / 2)]) {
    await resetLimit(server, limitRule('email_code_send_daily'), email);
    const sent = await Promise.all(half.map((login) => login.sendCode()));
    t.true(
      sent.every((answer) => answer.status === 200),
      JSON.stringify(sent.map((answer) => answer.body)),
    );
  }
  const mails = await Promise.all(logins.map(() => fixture.mail.next(email)));
  const codes = new Map(
    mails.map((message) => {
      const { uid, code } = linkCodeIn(message.raw);
      return [uid, code];
    }),
  );
  const attempts = await Promise.all(
    logins.map(async (login) => {
      const proven = await login.verifyCode(codes.get(login.uid) ?? '');
      t.like(proven.body, { step: 'enroll', reason: 'signup' }, JSON.stringify(proven));
      const options = await login.registerOptions();
      return { login, response: new SoftAuthenticator().register(options.body as never, server.url) };
    }),
  );
  const answers = await Promise.all(attempts.map(({ login, response }) => login.registerVerify(response)));

  const won = assertRace(t, answers, { 200: 1, 409: TRIES - 1 }, ['account_exists']);
  const accounts = await fixture.accounts(poolId);
  const users = accounts.users as Array<{ id: string; email: string }>;
  const passkeys = accounts.passkeys as Array<{ user_id: string }>;
  const [user] = users;
  t.deepEqual(
    users.map((row) => row.email),
    [email],
    'one user row',
  );
  t.deepEqual(
    passkeys.map((row) => row.user_id),
    [user?.id],
    'one passkey, the account’s: no orphan',
  );
  t.is((await audited(server, poolId, 'sign_up', 'success')).length, 1);

  const winner = attempts[answers.indexOf(won)];
  const { claims } = (await winner?.login.finish(String(won.body.redirect_to))) ?? {};
  t.is(claims?.sub, user?.id, 'the winner is signed in to the account');
});

// ------------------------------------------------------------------ last passkey

/** Passkeys are the only way in; self-service writes within five minutes of a sign-in. */
const strictPool = `
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [passkey]
self_service:
  recent_auth: 5m
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

test.serial('removing both passkeys from two sessions, 50 times at once, keeps one', async (t) => {
  const poolId = 'race-remove';
  const server = await serve(t, { [poolId]: strictPool });
  const { durable } = server.runtime;
  const email = `fay@${poolId}.example`;
  const self = (path: string) => `${server.url}/${poolId}/api/self/${path}`;

  // Session one: the sign-up's, with the laptop's passkey; it adds the phone's.
  const laptop = new SoftAuthenticator();
  const signedUp = await signUp(server, t.context.fixture.mail, poolId, email, laptop);
  const one = await signedUp.login.finish(String(signedUp.answer.body.redirect_to));
  const bearer = (tokens: { access_token: string }) => ({ authorization: `Bearer ${tokens.access_token}` });
  const phone = new SoftAuthenticator();
  const api = new Browserless();
  const options = await callJson(api, self('passkeys/register/options'), {
    json: {},
    headers: bearer(one.tokens),
  });
  const added = await callJson(api, self('passkeys/register/verify'), {
    json: { response: phone.register(options.body, server.url) },
    headers: bearer(one.tokens),
  });
  t.is(added.status, 201, JSON.stringify(added.body));
  // Session two: a sign-in with the phone, in another browser.
  const phoneSignIn = await passkeySignIn(server, poolId, phone);
  const two = await phoneSignIn.login.finish(String(phoneSignIn.answer.body.redirect_to));
  const userId = String(one.claims.sub);
  const [laptopKey, phoneKey] = await durable.passkeys.listByUser(poolId, userId);
  t.truthy(laptopKey && phoneKey);

  // Each session removes each passkey, from 50 clients at once.
  const answers = await Promise.all(
    separateClients(t, TRIES).map((client, index) =>
      callJson(client, self(`passkeys/${index % 4 < 2 ? laptopKey?.id : phoneKey?.id}`), {
        method: 'DELETE',
        headers: bearer(index % 2 === 0 ? one.tokens : two.tokens),
      }),
    ),
  );

  // One removal; the rest find the other change under way or the last way in (409), the passkey gone
  // (404), or their session signed out by the removal (401).
  t.log(statusCounts(answers));
  t.is(answers.filter((answer) => answer.status === 200).length, 1, JSON.stringify(statusCounts(answers)));
  const refusals: Record<number, string[]> = {
    401: ['invalid_token'],
    404: ['not_found'],
    409: ['conflict', 'last_way_in'],
  };
  for (const answer of answers.filter((candidate) => candidate.status !== 200)) {
    t.true(refusals[answer.status]?.includes(answer.body?.error) ?? false, JSON.stringify(answer));
  }
  const left = await durable.passkeys.listByUser(poolId, userId);
  t.is(left.length, 1, 'a way in remains');
  t.is((await audited(server, poolId, 'passkey_removed', 'success')).length, 1);

  const kept = left[0]?.credentialId === laptopKey?.credentialId ? laptop : phone;
  const { answer } = await passkeySignIn(server, poolId, kept);
  t.truthy(answer.body.redirect_to, 'the passkey left signs in');
});
