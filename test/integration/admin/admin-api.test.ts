/**
 * The admin API (`/{pool}/api/admin/…`) with real client-credentials tokens
 * against real PostgreSQL and Redis: users sign up through the interaction
 * API with a software passkey, and an operator's machine client finds,
 * lists, renames and removes what they have, signs them out and erases
 * them. Every refusal a stranger's token meets is checked on every route.
 */
import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { ADMIN_RATE_LIMIT } from '../../../src/admin/admin-routes.ts';
import { Browserless } from '../../support/browserless.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  type LoginFixture,
  type LoginServer,
  loginTests,
  mailedCode,
  passkeySignIn,
  REDIRECT,
} from '../login/login-fixture.ts';
import {
  type BrowserSignIn,
  SIGNED_IN,
  SIGNED_OUT,
  startOffline,
  tokensOf,
  whatStillWorks,
} from '../self-service/signed-in-checks.ts';
import { adminCall, machineToken as tokenOf } from './admin-client.ts';

const test = await loginTests();

const ADMIN_SECRET = 'admin-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const OTHER_SECRET = 'other-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

/** A smart pool with a first-party `web`, the admin client `ops`, and `mailer`, a machine client without `admin`. */
const POOL = `
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
    first_party: true
  - client_id: ops
    client_secret: ${ADMIN_SECRET}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: admin
  - client_id: mailer
    client_secret: ${OTHER_SECRET}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: email
`;

interface Pools {
  login: LoginServer;
  server: TestServer;
  /** The pool under test, and a second one with the same clients. */
  acme: string;
  other: string;
}

async function serve(t: ExecutionContext<{ fixture: LoginFixture }>, tag: string): Promise<Pools> {
  const [acme, other] = [`${tag}-acme`, `${tag}-other`];
  const login = await t.context.fixture.start(t, { [acme]: POOL, [other]: POOL });
  return { login, server: login.server, acme, other };
}

/** A client-credentials token of `ops` (admin), or of `mailer` (no admin), from `poolId`. */
const machineToken = (server: TestServer, poolId: string, clientId = 'ops', scope = 'admin') =>
  tokenOf(server, poolId, { clientId, secret: clientId === 'ops' ? ADMIN_SECRET : OTHER_SECRET, scope });

const admin = adminCall;

/**
 * A user who signed up in one browser (`first`) and signed in with the same
 * passkey in a second: two sessions, each with an access and refresh token.
 */
async function signedUpTwice(pools: Pools, mail: LoginFixture['mail'], email: string) {
  const { server, acme } = pools;
  const authenticator = new SoftAuthenticator();
  const browser = new Browserless();
  const signup = await startOffline(server, acme, browser);
  await signup.identify(email);
  await signup.verifyCode(await mailedCode(signup, mail, email));
  const options = await signup.registerOptions();
  const registered = await signup.registerVerify(authenticator.register(options.body as never, server.url));
  const first = await tokensOf(signup, registered.body.redirect_to, browser);

  const again = new Browserless();
  const login = await startOffline(server, acme, again);
  const request = await login.passkeyOptions();
  const signedIn = await login.passkeyVerify(authenticator.authenticate(request.body as never, server.url));
  const second = await tokensOf(login, signedIn.body.redirect_to, again);
  const user = await server.runtime.durable.users.findByEmail(acme, email);
  if (!user) throw new Error('the user was not created');
  return { userId: user.id, authenticator, first, second };
}

async function bothSignedOut(t: ExecutionContext, pools: Pools, ...signIns: BrowserSignIn[]) {
  for (const signIn of signIns)
    t.deepEqual(await whatStillWorks(pools.server, pools.acme, signIn), SIGNED_OUT);
}

// ------------------------------------------------------------------ who may

test('only a client-credentials token with admin of this pool’s machine client opens any route', async (t) => {
  const pools = await serve(t, 'who');
  const { server, acme, other } = pools;
  const { userId, first } = await signedUpTwice(pools, t.context.fixture.mail, `ada@${acme}.example`);
  const [passkey] = (await server.runtime.durable.passkeys.listByUser(acme, userId)) ?? [];
  const routes: [string, string, unknown?][] = [
    ['GET', 'users'],
    ['GET', `users?email=ada@${acme}.example`],
    ['POST', 'users', { email: `new@${acme}.example` }],
    ['GET', `users/${userId}`],
    ['DELETE', `users/${userId}`],
    ['POST', `users/${userId}/sessions/revoke`, {}],
    ['GET', `users/${userId}/events`],
    ['GET', `users/${userId}/passkeys`],
    ['GET', `passkeys?user_id=${userId}`],
    ['PATCH', `users/${userId}/passkeys/${passkey?.id}`, { name: 'Stolen' }],
    ['DELETE', `users/${userId}/passkeys/${passkey?.id}`],
    ['POST', `users/${userId}/enrollment-link`, {}],
    ['DELETE', `users/${userId}/totp`],
  ];
  const strangers: [string, string | undefined, number, string][] = [
    ['no token', undefined, 401, 'invalid_token'],
    ['garbage', 'not-a-token', 401, 'invalid_token'],
    ['the user’s own access token', first.access, 401, 'invalid_token'],
    ['the admin token of another pool', await machineToken(server, other), 401, 'invalid_token'],
    [
      'a machine token without admin',
      await machineToken(server, acme, 'mailer', 'email'),
      403,
      'insufficient_scope',
    ],
  ];
  for (const [label, token, status, error] of strangers) {
    for (const [method, path, json] of routes) {
      const answer = await admin(server, acme, token, method, path, json);
      t.is(answer.status, status, `${label}: ${method} ${path}`);
      t.is(answer.body?.error, error, `${label}: ${method} ${path}`);
    }
  }
  const challenge = (await admin(server, acme, undefined, 'GET', 'users')).headers.get('www-authenticate');
  t.is(challenge, 'Bearer');

  // Nothing changed: the user, their passkey and their sessions are all still there.
  t.like(await server.runtime.durable.passkeys.findByCredentialId(acme, passkey!.credentialId), {
    name: passkey!.name,
  });
  t.deepEqual(await whatStillWorks(server, acme, first), SIGNED_IN);
  t.is((await admin(server, 'no-such-pool', await machineToken(server, acme), 'GET', 'users')).status, 404);
});

// ------------------------------------------------------------------ users

test('creates a user, finds them by email, refuses a second with the same email and bad input', async (t) => {
  const { server, acme } = await serve(t, 'create');
  const token = await machineToken(server, acme);

  const created = await admin(server, acme, token, 'POST', 'users', {
    email: ' Eve@Example.COM ',
    name: 'Eve',
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  t.like(created.body, { email: 'eve@example.com', name: 'Eve', email_verified: false });
  t.deepEqual(Object.keys(created.body).sort(), [
    'created_at',
    'email',
    'email_verified',
    'id',
    'name',
    'updated_at',
  ]);

  const found = await admin(server, acme, token, 'GET', 'users?email=EVE@example.com');
  t.deepEqual(found.body, { users: [created.body], next_cursor: null });
  t.deepEqual((await admin(server, acme, token, 'GET', 'users?email=nobody@example.com')).body, {
    users: [],
    next_cursor: null,
  });

  const again = await admin(server, acme, token, 'POST', 'users', { email: 'eve@example.com' });
  t.is(again.status, 409);
  t.is(again.body.error, 'account_exists');
  for (const body of [
    {},
    { email: 'not an email' },
    { email: 'a@b.example', role: 'admin' },
    { email: 'a@b.example', name: '' },
  ]) {
    const refused = await admin(server, acme, token, 'POST', 'users', body);
    t.is(refused.status, 400, JSON.stringify(body));
    t.is(refused.body.error, 'invalid_request');
  }
  const users = await server.runtime.durable.users.list(acme, { limit: 10 });
  t.deepEqual(
    users.map((user) => user.email),
    ['eve@example.com'],
    'no refused request created anyone',
  );

  // Newest first: the refused duplicate, then the creation.
  const [refusal, creation] = await server.runtime.durable.auditEvents.list(acme, { event: 'user_created' });
  t.like(creation, { outcome: 'success', userId: created.body.id, userAgent: 'admin-api-test' });
  t.like(creation?.detail, { via: 'admin', client_id: 'ops' });
  t.like(refusal, { outcome: 'failure' });
  t.like(refusal?.detail, { via: 'admin', client_id: 'ops', code: 'account_exists' });
});

test('pages through every user with a cursor, and refuses a forged cursor or a bad limit', async (t) => {
  const { server, acme } = await serve(t, 'page');
  const token = await machineToken(server, acme);
  for (let i = 0; i < 5; i++)
    await admin(server, acme, token, 'POST', 'users', { email: `u${i}@${acme}.example` });

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query: string = cursor ? `users?limit=2&cursor=${cursor}` : 'users?limit=2';
    const page = await admin(server, acme, token, 'GET', query);
    t.is(page.status, 200, JSON.stringify(page.body));
    t.true(page.body.users.length <= 2);
    seen.push(...page.body.users.map((user: { email: string }) => user.email));
    cursor = page.body.next_cursor;
    pages++;
  } while (cursor && pages < 10);
  t.is(pages, 3);
  t.deepEqual(
    [...seen].sort(),
    [0, 1, 2, 3, 4].map((i) => `u${i}@${acme}.example`),
  );

  for (const query of [
    'users?cursor=bm90LWEtdXVpZA',
    'users?cursor=%%%',
    'users?limit=0',
    'users?limit=201',
    'users?limit=x',
    'users?sort=email',
  ]) {
    const refused = await admin(server, acme, token, 'GET', query);
    t.is(refused.status, 400, query);
    t.is(refused.body.error, 'invalid_request', query);
  }
});

test('reads a user with every credential, and answers 404 for an unknown or foreign id', async (t) => {
  const pools = await serve(t, 'read');
  const { server, acme, other } = pools;
  const { userId } = await signedUpTwice(pools, t.context.fixture.mail, `bo@${acme}.example`);
  const token = await machineToken(server, acme);

  const read = await admin(server, acme, token, 'GET', `users/${userId}`);
  t.is(read.status, 200, JSON.stringify(read.body));
  t.like(read.body, {
    id: userId,
    email: `bo@${acme}.example`,
    email_verified: true,
    password: { set: false },
    recovery_codes: { unused: 0 },
  });
  t.is(read.body.passkeys.length, 1);
  const [passkey] = read.body.passkeys;
  t.like(passkey, { user_id: userId, discoverable: true, device_bound: true, backed_up: false });
  t.true(Array.isArray(passkey.transports));
  t.truthy(passkey.last_used_at, 'the second sign-in used it');
  t.false('public_key' in passkey || 'publicKey' in passkey || 'counter' in passkey);

  for (const id of [randomUUID(), 'not-a-uuid']) {
    const missing = await admin(server, acme, token, 'GET', `users/${id}`);
    t.is(missing.status, 404, id);
    t.is(missing.body.error, 'not_found');
  }
  const foreign = await admin(server, other, await machineToken(server, other), 'GET', `users/${userId}`);
  t.is(foreign.status, 404, 'another pool’s admin does not see this pool’s users');
});

// ------------------------------------------------------------------ passkeys

test('lists and renames a user’s passkeys (name or display_name), refusing bad names and others’ passkeys', async (t) => {
  const pools = await serve(t, 'rename');
  const { server, acme } = pools;
  const ada = await signedUpTwice(pools, t.context.fixture.mail, `ada@${acme}.example`);
  const bo = await signedUpTwice(pools, t.context.fixture.mail, `bo@${acme}.example`);
  const token = await machineToken(server, acme);

  const listed = await admin(server, acme, token, 'GET', `users/${ada.userId}/passkeys`);
  t.is(listed.status, 200);
  t.is(listed.body.passkeys.length, 1);
  t.is(listed.body.next_cursor, null);
  t.deepEqual((await admin(server, acme, token, 'GET', `passkeys?user_id=${ada.userId}`)).body, listed.body);
  t.is(
    (await admin(server, acme, token, 'GET', 'passkeys')).status,
    400,
    'the Scalekit form needs ?user_id=',
  );
  t.is((await admin(server, acme, token, 'GET', `users/${randomUUID()}/passkeys`)).status, 404);

  const [passkey] = listed.body.passkeys;
  const renamed = await admin(server, acme, token, 'PATCH', `users/${ada.userId}/passkeys/${passkey.id}`, {
    name: 'Work laptop',
  });
  t.is(renamed.status, 200, JSON.stringify(renamed.body));
  t.is(renamed.body.name, 'Work laptop');
  const scalekit = await admin(server, acme, token, 'PATCH', `users/${ada.userId}/passkeys/${passkey.id}`, {
    display_name: 'Home laptop',
  });
  t.is(scalekit.body.name, 'Home laptop');

  for (const body of [
    {},
    { name: '' },
    { name: 'a\u0007b' },
    { name: 'x'.repeat(65) },
    { name: 'A', display_name: 'B' },
  ]) {
    const refused = await admin(
      server,
      acme,
      token,
      'PATCH',
      `users/${ada.userId}/passkeys/${passkey.id}`,
      body,
    );
    t.is(refused.status, 400, JSON.stringify(body));
  }
  const theirs = await admin(server, acme, token, 'PATCH', `users/${bo.userId}/passkeys/${passkey.id}`, {
    name: 'Not yours',
  });
  t.is(theirs.status, 404, 'a passkey is renamed only under its own user');
  const [stored] = await server.runtime.durable.passkeys.listByUser(acme, ada.userId);
  t.is(stored?.name, 'Home laptop');

  const renames = await server.runtime.durable.auditEvents.list(acme, { event: 'passkey_renamed' });
  t.is(renames.length, 2);
  t.like(renames[0], { userId: ada.userId, credentialId: stored?.credentialId });
  t.like(renames[0]?.detail, {
    via: 'admin',
    client_id: 'ops',
    name: 'Home laptop',
    previous_name: 'Work laptop',
  });
});

test('removing a user’s last passkey is allowed to an operator and signs every browser out', async (t) => {
  const pools = await serve(t, 'remove');
  const { server, acme } = pools;
  const { userId, authenticator, first, second } = await signedUpTwice(
    pools,
    t.context.fixture.mail,
    `cy@${acme}.example`,
  );
  const token = await machineToken(server, acme);
  const [passkey] = await server.runtime.durable.passkeys.listByUser(acme, userId);

  const removed = await admin(server, acme, token, 'DELETE', `users/${userId}/passkeys/${passkey!.id}`);
  t.is(removed.status, 200, JSON.stringify(removed.body));
  t.deepEqual(removed.body, { id: passkey!.id, signed_out: { sessions: 2, apps: 1 } });
  t.deepEqual(await server.runtime.durable.passkeys.listByUser(acme, userId), []);
  await bothSignedOut(t, pools, first, second);

  const { answer } = await passkeySignIn(server, acme, authenticator);
  t.is(answer.status, 400, 'the removed passkey no longer signs in');
  t.is((await admin(server, acme, token, 'DELETE', `users/${userId}/passkeys/${passkey!.id}`)).status, 404);

  const events = await server.runtime.durable.auditEvents.list(acme, { userId });
  const removal = events.find((event) => event.event === 'passkey_removed');
  t.like(removal, { outcome: 'success', credentialId: passkey!.credentialId });
  t.like(removal?.detail, { via: 'admin', client_id: 'ops' });
  const signOut = events.find((event) => event.event === 'signed_out_everywhere');
  t.like(signOut?.detail, {
    reason: 'passkey_removed',
    sessions: 2,
    grants: 2,
    via: 'admin',
    client_id: 'ops',
  });
});

test('an operator removes a user’s authenticator app, signing them out everywhere', async (t) => {
  const pools = await serve(t, 'totp');
  const { server, acme } = pools;
  const { userId, first, second } = await signedUpTwice(pools, t.context.fixture.mail, `go@${acme}.example`);
  const token = await machineToken(server, acme);
  t.is((await admin(server, acme, token, 'DELETE', `users/${userId}/totp`)).status, 404, 'none yet');
  // Enrolled as self-service would store it (the sealed value is opaque to storage).
  await server.runtime.durable.totp.set(acme, userId, 'v1.sealed.secret', 1);
  t.like((await admin(server, acme, token, 'GET', `users/${userId}`)).body, { totp: { set: true } });

  const removed = await admin(server, acme, token, 'DELETE', `users/${userId}/totp`);
  t.is(removed.status, 200, JSON.stringify(removed.body));
  t.deepEqual(removed.body, { signed_out: { sessions: 2, apps: 1 } });
  t.is(await server.runtime.durable.totp.find(acme, userId), undefined);
  await bothSignedOut(t, pools, first, second);
  const [event] = await server.runtime.durable.auditEvents.list(acme, { userId, event: 'totp_removed' });
  t.like(event?.detail, { via: 'admin', client_id: 'ops' });
});

// ------------------------------------------------------------------ sessions, erasure, events

test('revoking a user’s sessions signs every browser out and keeps their passkey', async (t) => {
  const pools = await serve(t, 'revoke');
  const { server, acme } = pools;
  const { userId, authenticator, first, second } = await signedUpTwice(
    pools,
    t.context.fixture.mail,
    `di@${acme}.example`,
  );
  const token = await machineToken(server, acme);

  const revoked = await admin(server, acme, token, 'POST', `users/${userId}/sessions/revoke`, {});
  t.is(revoked.status, 200, JSON.stringify(revoked.body));
  t.deepEqual(revoked.body, { signed_out: { sessions: 2, apps: 1 } });
  await bothSignedOut(t, pools, first, second);
  const { answer } = await passkeySignIn(server, acme, authenticator);
  t.truthy(answer.body.redirect_to, 'the user signs in again with their passkey');
  t.is((await admin(server, acme, token, 'POST', `users/${randomUUID()}/sessions/revoke`, {})).status, 404);
  t.is(
    (await admin(server, acme, token, 'POST', `users/${userId}/sessions/revoke`, { all: true })).status,
    400,
  );
});

test('deleting a user erases them with their passkeys and tokens; their audit trail stays readable', async (t) => {
  const pools = await serve(t, 'erase');
  const { server, acme } = pools;
  const { userId, authenticator, first, second } = await signedUpTwice(
    pools,
    t.context.fixture.mail,
    `ed@${acme}.example`,
  );
  const token = await machineToken(server, acme);

  const deleted = await admin(server, acme, token, 'DELETE', `users/${userId}`);
  t.is(deleted.status, 200, JSON.stringify(deleted.body));
  t.deepEqual(deleted.body, { id: userId, signed_out: { sessions: 2, apps: 1 } });
  t.is((await admin(server, acme, token, 'GET', `users/${userId}`)).status, 404);
  t.is(await server.runtime.durable.users.findByEmail(acme, `ed@${acme}.example`), undefined);
  t.deepEqual(await server.runtime.durable.passkeys.listByUser(acme, userId), []);
  await bothSignedOut(t, pools, first, second);
  const { answer } = await passkeySignIn(server, acme, authenticator);
  t.is(answer.status, 400, 'the erased user’s passkey signs no one in');
  t.is((await admin(server, acme, token, 'DELETE', `users/${userId}`)).status, 404);

  const events = await admin(server, acme, token, 'GET', `users/${userId}/events`);
  t.is(events.status, 200);
  t.is(events.body.events[0].event, 'user_deleted');
  t.like(events.body.events[0].detail, { via: 'admin', client_id: 'ops' });
  t.true(events.body.events.some((event: { event: string }) => event.event === 'passkey_registration'));
  t.is((await admin(server, acme, token, 'GET', `users/${randomUUID()}/events`)).status, 404);
});

test('pages through a user’s events, newest first', async (t) => {
  const pools = await serve(t, 'events');
  const { server, acme } = pools;
  const { userId } = await signedUpTwice(pools, t.context.fixture.mail, `fa@${acme}.example`);
  const token = await machineToken(server, acme);
  const all = await server.runtime.durable.auditEvents.list(acme, { userId });
  t.true(all.length >= 3, `events: ${all.map((event) => event.event)}`);

  const ids: number[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor
      ? `users/${userId}/events?limit=2&cursor=${cursor}`
      : `users/${userId}/events?limit=2`;
    const page = await admin(server, acme, token, 'GET', query);
    t.is(page.status, 200, JSON.stringify(page.body));
    ids.push(...page.body.events.map((event: { id: number }) => event.id));
    cursor = page.body.next_cursor;
  } while (cursor && ids.length < 100);
  t.deepEqual(
    ids,
    all.map((event) => event.id),
    'every event once, newest first',
  );
  t.is((await admin(server, acme, token, 'GET', `users/${userId}/events?cursor=abc`)).status, 400);
});

// ------------------------------------------------------------------ limits

test('the admin API is rate limited per client', async (t) => {
  const { server, acme } = await serve(t, 'limit');
  const token = await machineToken(server, acme);
  t.is((await admin(server, acme, token, 'GET', 'users')).status, 200);
  // Spend the rest of the window's allowance directly in the store, as many requests would.
  const limiter = server.runtime.ephemeral.rateLimiter(ADMIN_RATE_LIMIT);
  for (let i = 1; i < ADMIN_RATE_LIMIT.points; i += 100)
    await Promise.all(
      Array.from({ length: Math.min(100, ADMIN_RATE_LIMIT.points - i) }, () =>
        limiter.consume(`${acme}:ops`),
      ),
    );
  const limited = await admin(server, acme, token, 'GET', 'users');
  t.is(limited.status, 429);
  t.is(limited.body.error, 'rate_limited');
  t.truthy(limited.headers.get('retry-after'));
});
