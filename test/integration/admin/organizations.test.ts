/**
 * Organizations through the admin API (`/{pool}/api/admin/organizations…`)
 * against real PostgreSQL and Redis, with real client-credentials tokens:
 * create, read by id or slug, page, change and delete organizations, add and
 * remove members, and the user's view naming their organizations. Every
 * refusal is checked to write nothing; removing a member and deleting an
 * organization sign the members out everywhere.
 */
import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { Browserless } from '../../support/browserless.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import { type LoginFixture, loginTests, mailedCode, REDIRECT } from '../login/login-fixture.ts';
import {
  type BrowserSignIn,
  SIGNED_IN,
  SIGNED_OUT,
  startOffline,
  tokensOf,
  whatStillWorks,
} from '../self-service/signed-in-checks.ts';
import { adminCall as admin, machineToken as tokenOf } from './admin-client.ts';

const test = await loginTests();

const ADMIN_SECRET = 'admin-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const OTHER_SECRET = 'other-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

/** A smart pool with first-party `web`, the admin client `ops`, and `mailer` without admin. */
const pool = (firstFactor = '[passkey, email_otp]', secondFactor = '[passkey, totp]') => `
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: ${firstFactor}
${secondFactor ? `  second_factor: ${secondFactor}\n` : ''}clients:
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
  server: TestServer;
  /** The pool under test (passkey, email_otp), another like it, and one whose only first factor is a passkey. */
  acme: string;
  other: string;
  passkeyOnly: string;
  token: string;
}

async function serve(t: ExecutionContext<{ fixture: LoginFixture }>, tag: string): Promise<Pools> {
  const [acme, other, passkeyOnly] = [`${tag}-acme`, `${tag}-other`, `${tag}-pk`];
  const { server } = await t.context.fixture.start(t, {
    [acme]: pool(),
    [other]: pool(),
    [passkeyOnly]: pool('[passkey]', ''),
  });
  return { server, acme, other, passkeyOnly, token: await machineToken(server, acme) };
}

const machineToken = (server: TestServer, poolId: string, clientId = 'ops', scope = 'admin') =>
  tokenOf(server, poolId, { clientId, secret: clientId === 'ops' ? ADMIN_SECRET : OTHER_SECRET, scope });

/** The admin API of the pool under test, with its admin token. */
const api = (pools: Pools) => (method: string, path: string, json?: unknown) =>
  admin(pools.server, pools.acme, pools.token, method, path, json);

/** A user who signed up with a passkey in one browser, holding a session and tokens. */
async function signedUp(pools: Pools, mail: LoginFixture['mail'], email: string) {
  const { server, acme } = pools;
  const authenticator = new SoftAuthenticator();
  const browser = new Browserless();
  const signup = await startOffline(server, acme, browser);
  await signup.identify(email);
  await signup.verifyCode(await mailedCode(signup, mail, email));
  const options = await signup.registerOptions();
  const registered = await signup.registerVerify(authenticator.register(options.body as never, server.url));
  const first = await tokensOf(signup, registered.body.redirect_to, browser);
  const user = await server.runtime.durable.users.findByEmail(acme, email);
  if (!user) throw new Error('the user was not created');
  return { userId: user.id, authenticator, first };
}

/** A second browser signing in with the same passkey (as a member, into their one organization). */
async function signedInAgain(pools: Pools, authenticator: SoftAuthenticator): Promise<BrowserSignIn> {
  const { server, acme } = pools;
  const browser = new Browserless();
  const login = await startOffline(server, acme, browser);
  const request = await login.passkeyOptions();
  const signedIn = await login.passkeyVerify(authenticator.authenticate(request.body as never, server.url));
  return tokensOf(login, signedIn.body.redirect_to, browser);
}

const organizationsOf = (pools: Pools) =>
  pools.server.runtime.durable.organizations.list(pools.acme, { limit: 100 });

// ------------------------------------------------------------------ who may

test('only a client-credentials token with admin of this pool’s machine client opens the organization routes', async (t) => {
  const pools = await serve(t, 'org-who');
  const { server, acme, other } = pools;
  const call = api(pools);
  const created = await call('POST', 'organizations', { slug: 'acme-inc', name: 'Acme Inc.' });
  const { userId, first } = await signedUp(pools, t.context.fixture.mail, `ada@${acme}.example`);
  t.is((await call('PUT', `organizations/acme-inc/members/${userId}`)).status, 201);
  const id = created.body.id;
  const routes: [string, string, unknown?][] = [
    ['GET', 'organizations'],
    ['POST', 'organizations', { slug: 'stolen', name: 'Stolen' }],
    ['GET', `organizations/${id}`],
    ['GET', 'organizations/acme-inc'],
    ['PATCH', `organizations/${id}`, { name: 'Stolen' }],
    ['DELETE', `organizations/${id}`],
    ['GET', `organizations/${id}/members`],
    ['PUT', `organizations/${id}/members/${userId}`],
    ['DELETE', `organizations/${id}/members/${userId}`],
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
  // Nothing changed: the one organization, its member, and the member's session.
  t.deepEqual(
    (await organizationsOf(pools)).map((organization) => [organization.slug, organization.name]),
    [['acme-inc', 'Acme Inc.']],
  );
  t.deepEqual(
    (await server.runtime.durable.organizations.listMembers(acme, id, { limit: 10 })).map(
      (member) => member.userId,
    ),
    [userId],
  );
  t.deepEqual(await whatStillWorks(server, acme, first), SIGNED_IN);
});

// ------------------------------------------------------------------ create, read, list

test('creates an organization with its defaults or settings, reads it by id or slug, and audits it', async (t) => {
  const pools = await serve(t, 'org-create');
  const call = api(pools);

  const plain = await call('POST', 'organizations', { slug: 'acme', name: '  Acme Inc.  ' });
  t.is(plain.status, 201, JSON.stringify(plain.body));
  t.like(plain.body, {
    slug: 'acme',
    name: 'Acme Inc.',
    passkey_login: 'on',
    require_mfa: false,
    allowed_first_factors: null,
  });
  t.deepEqual(Object.keys(plain.body).sort(), [
    'allowed_first_factors',
    'created_at',
    'id',
    'name',
    'passkey_login',
    'require_mfa',
    'slug',
    'updated_at',
  ]);
  const strict = await call('POST', 'organizations', {
    slug: 'globex-2',
    name: 'Globex',
    passkey_login: 'off',
    require_mfa: true,
    allowed_first_factors: ['email_otp'],
  });
  t.is(strict.status, 201, JSON.stringify(strict.body));
  t.like(strict.body, { passkey_login: 'off', require_mfa: true, allowed_first_factors: ['email_otp'] });

  for (const handle of [plain.body.id, 'acme']) {
    const read = await call('GET', `organizations/${handle}`);
    t.is(read.status, 200, handle);
    t.deepEqual(read.body, plain.body, handle);
  }
  for (const handle of [randomUUID(), 'no-such-org']) {
    const missing = await call('GET', `organizations/${handle}`);
    t.is(missing.status, 404, handle);
    t.is(missing.body.error, 'not_found');
  }
  t.is((await call('GET', 'organizations/acme?expand=members')).status, 400, 'no unknown query');
  const foreign = await admin(
    pools.server,
    pools.other,
    await machineToken(pools.server, pools.other),
    'GET',
    `organizations/${plain.body.id}`,
  );
  t.is(foreign.status, 404, 'another pool’s admin does not see this pool’s organizations');

  const [created] = await pools.server.runtime.durable.auditEvents.list(pools.acme, {
    event: 'organization_created',
    limit: 1,
  });
  t.like(created, { outcome: 'success', userAgent: 'admin-api-test' });
  t.like(created?.detail, {
    via: 'admin',
    client_id: 'ops',
    organization_id: strict.body.id,
    slug: 'globex-2',
  });
});

test('refuses a bad or taken slug, a bad name, unknown fields, factors the pool lacks and settings without a way in, writing nothing', async (t) => {
  const pools = await serve(t, 'org-refuse');
  const call = api(pools);
  t.is((await call('POST', 'organizations', { slug: 'taken', name: 'First' })).status, 201);

  const refusals: [unknown, RegExp?][] = [
    [{ name: 'No slug' }, /slug/],
    [{ slug: 'Upper', name: 'X' }, /lowercase/],
    [{ slug: '-lead', name: 'X' }, /starts and ends/],
    [{ slug: 'trail-', name: 'X' }, /starts and ends/],
    [{ slug: 'a_b', name: 'X' }],
    [{ slug: 'a'.repeat(64), name: 'X' }],
    [{ slug: '', name: 'X' }],
    [{ slug: '123e4567-e89b-12d3-a456-426614174000', name: 'X' }, /shape of an id/],
    [{ slug: 'fine' }, /name/],
    [{ slug: 'fine', name: '   ' }, /cannot be empty/],
    [{ slug: 'fine', name: 'x'.repeat(101) }, /at most 100/],
    [{ slug: 'fine', name: 'Bell\u0007' }, /control characters/],
    [{ slug: 'fine', name: 'X', role: 'owner' }],
    [{ slug: 'fine', name: 'X', passkey_login: true }, /"on" or "off"/],
    [{ slug: 'fine', name: 'X', require_mfa: 'yes' }, /true or false/],
    [{ slug: 'fine', name: 'X', allowed_first_factors: [] }, /at least one/],
    [{ slug: 'fine', name: 'X', allowed_first_factors: 'passkey' }],
    [{ slug: 'fine', name: 'X', allowed_first_factors: ['passkey', 'passkey'] }, /passkey twice/],
    [{ slug: 'fine', name: 'X', allowed_first_factors: ['password'] }, /lists password, which is not/],
    [{ slug: 'fine', name: 'X', allowed_first_factors: ['passkey', 'sms'] }, /lists sms, which is not/],
    [
      { slug: 'fine', name: 'X', passkey_login: 'off', allowed_first_factors: ['passkey'] },
      /no way to sign in/,
    ],
  ];
  for (const [body, description] of refusals) {
    const refused = await call('POST', 'organizations', body);
    t.is(refused.status, 400, JSON.stringify(body));
    t.is(refused.body.error, 'invalid_request', JSON.stringify(body));
    if (description) t.regex(refused.body.error_description, description, JSON.stringify(body));
  }
  // A pool whose only first factor is a passkey: passkey_login off leaves nothing.
  const passkeyOnly = await admin(
    pools.server,
    pools.passkeyOnly,
    await machineToken(pools.server, pools.passkeyOnly),
    'POST',
    'organizations',
    { slug: 'fine', name: 'X', passkey_login: 'off' },
  );
  t.is(passkeyOnly.status, 400, JSON.stringify(passkeyOnly.body));
  t.regex(passkeyOnly.body.error_description, /no way to sign in/);

  const taken = await call('POST', 'organizations', { slug: 'taken', name: 'Second' });
  t.is(taken.status, 409);
  t.is(taken.body.error, 'slug_taken');
  t.regex(taken.body.error_description, /"taken"/);

  t.deepEqual(
    (await organizationsOf(pools)).map((organization) => [organization.slug, organization.name]),
    [['taken', 'First']],
    'no refused request created anything',
  );
  t.deepEqual(await pools.server.runtime.durable.organizations.list(pools.passkeyOnly, { limit: 10 }), []);
  const [refusal] = await pools.server.runtime.durable.auditEvents.list(pools.acme, {
    event: 'organization_created',
  });
  t.like(refusal, { outcome: 'failure' });
  t.like(refusal?.detail, { via: 'admin', client_id: 'ops', code: 'slug_taken', slug: 'taken' });
});

test('pages through the organizations with a cursor, and refuses a forged cursor or a bad limit', async (t) => {
  const pools = await serve(t, 'org-page');
  const call = api(pools);
  for (let i = 0; i < 5; i++) await call('POST', 'organizations', { slug: `org-${i}`, name: `Org ${i}` });
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await call(
      'GET',
      cursor ? `organizations?limit=2&cursor=${cursor}` : 'organizations?limit=2',
    );
    t.is(page.status, 200, JSON.stringify(page.body));
    t.true(page.body.organizations.length <= 2);
    seen.push(...page.body.organizations.map((organization: { slug: string }) => organization.slug));
    cursor = page.body.next_cursor;
    pages++;
  } while (cursor && pages < 10);
  t.is(pages, 3);
  t.deepEqual([...seen].sort(), ['org-0', 'org-1', 'org-2', 'org-3', 'org-4']);
  t.deepEqual(Object.keys((await call('GET', 'organizations')).body).sort(), [
    'next_cursor',
    'organizations',
  ]);
  for (const query of [
    'organizations?cursor=bm90LWEtdXVpZA',
    'organizations?cursor=%%%',
    'organizations?limit=0',
    'organizations?limit=201',
    'organizations?limit=x',
    'organizations?slug=org-1',
  ]) {
    const refused = await call('GET', query);
    t.is(refused.status, 400, query);
    t.is(refused.body.error, 'invalid_request', query);
  }
});

// ------------------------------------------------------------------ change, delete

test('changes an organization in part, judging the settings as they will be, and audits which fields changed', async (t) => {
  const pools = await serve(t, 'org-patch');
  const call = api(pools);
  const created = await call('POST', 'organizations', {
    slug: 'initech',
    name: 'Initech',
    allowed_first_factors: ['passkey'],
  });
  await call('POST', 'organizations', { slug: 'taken', name: 'Taken' });
  const id = created.body.id;

  const changed = await call('PATCH', 'organizations/initech', { name: 'Initech LLC', require_mfa: true });
  t.is(changed.status, 200, JSON.stringify(changed.body));
  t.like(changed.body, {
    id,
    slug: 'initech',
    name: 'Initech LLC',
    require_mfa: true,
    passkey_login: 'on',
    allowed_first_factors: ['passkey'],
    created_at: created.body.created_at,
  });
  t.true(changed.body.updated_at >= created.body.updated_at);

  // Passkeys off while they are the only factor allowed: no way in. Both together are fine.
  const noWayIn = await call('PATCH', `organizations/${id}`, { passkey_login: 'off' });
  t.is(noWayIn.status, 400);
  t.regex(noWayIn.body.error_description, /no way to sign in/);
  const both = await call('PATCH', `organizations/${id}`, {
    passkey_login: 'off',
    allowed_first_factors: ['email_otp'],
  });
  t.is(both.status, 200, JSON.stringify(both.body));
  t.like(both.body, { passkey_login: 'off', allowed_first_factors: ['email_otp'] });
  const back = await call('PATCH', `organizations/${id}`, { allowed_first_factors: null, slug: 'initech-2' });
  t.like(back.body, { allowed_first_factors: null, slug: 'initech-2' });
  t.is((await call('GET', 'organizations/initech')).status, 404, 'the old slug is free');
  t.is((await call('GET', 'organizations/initech-2')).body.id, id);

  const before = await pools.server.runtime.durable.organizations.find(pools.acme, id);
  for (const body of [
    {},
    { id: randomUUID() },
    { name: '' },
    { slug: 'Bad Slug' },
    { allowed_first_factors: ['password'] },
    { passkey_login: 'on', allowed_first_factors: [] },
  ]) {
    const refused = await call('PATCH', `organizations/${id}`, body);
    t.is(refused.status, 400, JSON.stringify(body));
    t.is(refused.body.error, 'invalid_request', JSON.stringify(body));
  }
  t.regex((await call('PATCH', `organizations/${id}`, {})).body.error_description, /Say what to change/);
  const taken = await call('PATCH', `organizations/${id}`, { slug: 'taken' });
  t.is(taken.status, 409);
  t.is(taken.body.error, 'slug_taken');
  t.is((await call('PATCH', `organizations/${randomUUID()}`, { name: 'Nobody' })).status, 404);
  t.is((await call('PATCH', 'organizations/nobody', { name: 'Nobody' })).status, 404);
  t.deepEqual(
    await pools.server.runtime.durable.organizations.find(pools.acme, id),
    before,
    'no refused change wrote anything',
  );

  const updates = await pools.server.runtime.durable.auditEvents.list(pools.acme, {
    event: 'organization_updated',
  });
  t.deepEqual(
    updates.map((event) => [event.outcome, event.detail?.changed ?? event.detail?.code]),
    [
      ['failure', 'slug_taken'],
      ['success', ['slug', 'allowed_first_factors']],
      ['success', ['passkey_login', 'allowed_first_factors']],
      ['success', ['name', 'require_mfa']],
    ],
    'newest first; refusals before the store are not audited',
  );
  t.like(updates[1]?.detail, { via: 'admin', client_id: 'ops', organization_id: id, slug: 'initech-2' });
});

test('deleting an organization signs its members out everywhere first, keeps the users, and audits it', async (t) => {
  const pools = await serve(t, 'org-delete');
  const { server, acme } = pools;
  const call = api(pools);
  const created = await call('POST', 'organizations', { slug: 'hooli', name: 'Hooli' });
  const member = await signedUp(pools, t.context.fixture.mail, `gavin@${acme}.example`);
  const outsider = await signedUp(pools, t.context.fixture.mail, `richard@${acme}.example`);
  t.is((await call('PUT', `organizations/hooli/members/${member.userId}`)).status, 201);
  const second = await signedInAgain(pools, member.authenticator);

  const deleted = await call('DELETE', 'organizations/hooli');
  t.is(deleted.status, 204, JSON.stringify(deleted.body));
  t.is(deleted.body, undefined);
  t.deepEqual(await whatStillWorks(server, acme, member.first), SIGNED_OUT);
  t.deepEqual(await whatStillWorks(server, acme, second), SIGNED_OUT);
  t.deepEqual(await whatStillWorks(server, acme, outsider.first), SIGNED_IN, 'a non-member stays signed in');
  t.is((await call('GET', `organizations/${created.body.id}`)).status, 404);
  t.is((await call('DELETE', `organizations/${created.body.id}`)).status, 404);
  t.like((await call('GET', `users/${member.userId}`)).body, { id: member.userId, organizations: [] });

  const events = await server.runtime.durable.auditEvents.list(acme);
  t.like(events.find((event) => event.event === 'organization_deleted')?.detail, {
    via: 'admin',
    client_id: 'ops',
    organization_id: created.body.id,
    slug: 'hooli',
    members: 1,
  });
  t.like(
    events.find((event) => event.event === 'signed_out_everywhere' && event.userId === member.userId)?.detail,
    { reason: 'organization_deleted', sessions: 2, via: 'admin', client_id: 'ops' },
  );
});

// ------------------------------------------------------------------ members

test('adds members idempotently, lists them in pages, and shows a user’s organizations', async (t) => {
  const pools = await serve(t, 'org-members');
  const { server, acme, other } = pools;
  const call = api(pools);
  const acmeInc = (await call('POST', 'organizations', { slug: 'acme-inc', name: 'Acme Inc.' })).body;
  const beta = (await call('POST', 'organizations', { slug: 'beta', name: 'Beta' })).body;
  const users = await Promise.all(
    [0, 1, 2].map((i) =>
      server.runtime.durable.users.create({ poolId: acme, email: `m${i}@${acme}.example` }),
    ),
  );
  const [ada] = users;

  const added = await call('PUT', `organizations/acme-inc/members/${ada!.id}`);
  t.is(added.status, 201, JSON.stringify(added.body));
  t.deepEqual(added.body, {
    user_id: ada!.id,
    email: ada!.email,
    organization: { id: acmeInc.id, slug: 'acme-inc', name: 'Acme Inc.' },
  });
  const again = await call('PUT', `organizations/${acmeInc.id}/members/${ada!.id}`);
  t.is(again.status, 200, 'already a member');
  t.deepEqual(again.body, added.body);
  for (const user of users.slice(1))
    t.is((await call('PUT', `organizations/acme-inc/members/${user.id}`, {})).status, 201);
  t.is((await call('PUT', `organizations/beta/members/${ada!.id}`)).status, 201);

  const read = await call('GET', `users/${ada!.id}`);
  t.deepEqual(read.body.organizations, [
    { id: acmeInc.id, slug: 'acme-inc', name: 'Acme Inc.' },
    { id: beta.id, slug: 'beta', name: 'Beta' },
  ]);
  t.deepEqual((await call('GET', `users/${users[1]!.id}`)).body.organizations, [
    { id: acmeInc.id, slug: 'acme-inc', name: 'Acme Inc.' },
  ]);

  const seen: { user_id: string; email: string; added_at: string }[] = [];
  let cursor: string | null = null;
  do {
    const page = await call(
      'GET',
      cursor
        ? `organizations/acme-inc/members?limit=2&cursor=${cursor}`
        : 'organizations/acme-inc/members?limit=2',
    );
    t.is(page.status, 200, JSON.stringify(page.body));
    seen.push(...page.body.members);
    cursor = page.body.next_cursor;
  } while (cursor && seen.length < 10);
  t.deepEqual(
    seen.map((member) => member.user_id),
    users.map((user) => user.id).sort(),
    'every member once, by user id',
  );
  t.deepEqual(Object.keys(seen[0]!).sort(), ['added_at', 'email', 'user_id']);
  t.regex(seen[0]!.added_at, /^\d{4}-\d\d-\d\dT/);

  const stranger = await server.runtime.durable.users.create({ poolId: other, email: `s@${other}.example` });
  for (const [path, what] of [
    [`organizations/acme-inc/members/${randomUUID()}`, 'an unknown user'],
    [`organizations/acme-inc/members/not-a-uuid`, 'a malformed user id'],
    [`organizations/acme-inc/members/${stranger.id}`, 'another pool’s user'],
    [`organizations/nobody/members/${ada!.id}`, 'an unknown organization'],
  ] as const) {
    const refused = await call('PUT', path);
    t.is(refused.status, 404, what);
    t.is(refused.body.error, 'not_found', what);
  }
  t.is((await call('PUT', `organizations/acme-inc/members/${ada!.id}`, { role: 'owner' })).status, 400);
  t.is((await call('GET', 'organizations/nobody/members')).status, 404);
  t.is((await call('GET', 'organizations/acme-inc/members?cursor=abc')).status, 400);
  t.is((await call('GET', 'organizations/acme-inc/members?limit=201')).status, 400);
  t.is(
    (await server.runtime.durable.organizations.listMembers(acme, acmeInc.id, { limit: 10 })).length,
    3,
    'no refused request added anyone',
  );
  t.deepEqual((await server.runtime.durable.users.findAccount(other, stranger.id))?.organizations, []);

  const additions = await server.runtime.durable.auditEvents.list(acme, {
    event: 'organization_member_added',
  });
  t.is(additions.length, 4, 'one per member added; none for “already”');
  t.like(additions.at(-1), { userId: ada!.id, outcome: 'success' });
  t.like(additions.at(-1)?.detail, {
    via: 'admin',
    client_id: 'ops',
    organization_id: acmeInc.id,
    slug: 'acme-inc',
  });
});

test('removing a member signs them out everywhere, leaves their other organizations, and is 404 for a non-member', async (t) => {
  const pools = await serve(t, 'org-remove');
  const { server, acme } = pools;
  const call = api(pools);
  const acmeInc = (await call('POST', 'organizations', { slug: 'acme-inc', name: 'Acme Inc.' })).body;
  await call('POST', 'organizations', { slug: 'beta', name: 'Beta' });
  const member = await signedUp(pools, t.context.fixture.mail, `ada@${acme}.example`);
  const stays = await signedUp(pools, t.context.fixture.mail, `bo@${acme}.example`);
  t.is((await call('PUT', `organizations/acme-inc/members/${member.userId}`)).status, 201);
  t.is((await call('PUT', `organizations/acme-inc/members/${stays.userId}`)).status, 201);
  const second = await signedInAgain(pools, member.authenticator);
  t.is((await call('PUT', `organizations/beta/members/${member.userId}`)).status, 201);

  const removed = await call('DELETE', `organizations/acme-inc/members/${member.userId}`);
  t.is(removed.status, 204, JSON.stringify(removed.body));
  t.deepEqual(await whatStillWorks(server, acme, member.first), SIGNED_OUT);
  t.deepEqual(await whatStillWorks(server, acme, second), SIGNED_OUT);
  t.deepEqual(await whatStillWorks(server, acme, stays.first), SIGNED_IN, 'the other member stays signed in');
  t.deepEqual(
    (await call('GET', `users/${member.userId}`)).body.organizations.map((org: { slug: string }) => org.slug),
    ['beta'],
  );
  t.deepEqual(
    (await call('GET', 'organizations/acme-inc/members')).body.members.map(
      (entry: { user_id: string }) => entry.user_id,
    ),
    [stays.userId],
  );

  for (const [path, what] of [
    [`organizations/acme-inc/members/${member.userId}`, 'no longer a member'],
    [`organizations/acme-inc/members/${randomUUID()}`, 'an unknown user'],
    [`organizations/nobody/members/${stays.userId}`, 'an unknown organization'],
  ] as const) {
    const refused = await call('DELETE', path);
    t.is(refused.status, 404, what);
    t.is(refused.body.error, 'not_found', what);
  }
  t.deepEqual(
    await whatStillWorks(server, acme, stays.first),
    SIGNED_IN,
    'a refused removal signs no one out',
  );

  const events = await server.runtime.durable.auditEvents.list(acme, { userId: member.userId });
  t.like(events.find((event) => event.event === 'organization_member_removed')?.detail, {
    via: 'admin',
    client_id: 'ops',
    organization_id: acmeInc.id,
    slug: 'acme-inc',
  });
  t.like(events.find((event) => event.event === 'signed_out_everywhere')?.detail, {
    reason: 'organization_member_removed',
    sessions: 2,
    via: 'admin',
    client_id: 'ops',
  });
});

test('refuses to rename or delete an organization a client of the pool file is bound to, and require_mfa that no member could meet', async (t) => {
  const boundPool = `${pool('[passkey, email_otp]', '[passkey]')}
  - client_id: bound-app
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email organization
    first_party: true
    organization: bound-org
`;
  const { server } = await t.context.fixture.start(t, { 'org-bound': boundPool });
  const pools = {
    server,
    acme: 'org-bound',
    other: '',
    passkeyOnly: '',
    token: await machineToken(server, 'org-bound'),
  };
  const call = api(pools);
  t.is((await call('POST', 'organizations', { slug: 'bound-org', name: 'Bound' })).status, 201);

  const renamed = await call('PATCH', 'organizations/bound-org', { slug: 'renamed' });
  t.is(renamed.status, 409);
  t.regex(renamed.body.error_description, /bound-app is bound to this organization/);
  t.is((await call('DELETE', 'organizations/bound-org')).status, 409);
  t.is(
    (await call('PATCH', 'organizations/bound-org', { name: 'Still bound' })).status,
    200,
    'its name may change',
  );
  t.deepEqual(
    (await organizationsOf(pools)).map((organization) => [organization.slug, organization.name]),
    [['bound-org', 'Still bound']],
  );

  // This pool's only second factor is a passkey: with passkeys off, no member could meet MFA.
  const unmeetable = await call('POST', 'organizations', {
    slug: 'strict',
    name: 'Strict',
    passkey_login: 'off',
    require_mfa: true,
  });
  t.is(unmeetable.status, 400);
  t.regex(unmeetable.body.error_description, /require_mfa needs a second factor/);
  t.is(
    (await call('POST', 'organizations', { slug: 'strict', name: 'Strict', require_mfa: true })).status,
    201,
  );
  t.is((await call('PATCH', 'organizations/strict', { passkey_login: 'off' })).status, 400);
});

test('a change that asks more of the members signs them out everywhere; one that asks less, or renames, does not', async (t) => {
  const pools = await serve(t, 'org-tighten');
  const { server, acme } = pools;
  const call = api(pools);
  await call('POST', 'organizations', { slug: 'acme-inc', name: 'Acme Inc.' });
  const member = await signedUp(pools, t.context.fixture.mail, `ada@${acme}.example`);
  t.is((await call('PUT', `organizations/acme-inc/members/${member.userId}`)).status, 201);
  const session = await signedInAgain(pools, member.authenticator);

  t.is((await call('PATCH', 'organizations/acme-inc', { name: 'Acme Incorporated' })).status, 200);
  t.deepEqual(await whatStillWorks(server, acme, session), SIGNED_IN, 'a new name asks nothing more');

  t.is((await call('PATCH', 'organizations/acme-inc', { require_mfa: true })).status, 200);
  t.deepEqual(await whatStillWorks(server, acme, session), SIGNED_OUT, 'MFA switched on');

  const again = await signedInAgain(pools, member.authenticator);
  t.is((await call('PATCH', 'organizations/acme-inc', { require_mfa: false })).status, 200);
  t.deepEqual(await whatStillWorks(server, acme, again), SIGNED_IN, 'asking less signs no one out');
  t.is((await call('PATCH', 'organizations/acme-inc', { allowed_first_factors: ['email_otp'] })).status, 200);
  t.deepEqual(await whatStillWorks(server, acme, again), SIGNED_OUT, 'fewer first factors');

  const events = await server.runtime.durable.auditEvents.list(acme, { userId: member.userId });
  t.true(
    events.some(
      (event) => event.event === 'signed_out_everywhere' && event.detail?.reason === 'organization_tightened',
    ),
  );
});
