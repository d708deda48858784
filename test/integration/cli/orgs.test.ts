/**
 * `postern orgs …` through the real command against PostgreSQL and Redis:
 * create, list, update, add and remove members, list members, delete; the
 * same refusals as the admin API (one sentence on stderr, exit 1); every
 * write audited `via: cli`; removing a member and deleting an organization
 * revoke what the members were signed in with.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { openDurableStore } from '../../../src/storage/postgres/open-durable-store.ts';
import type { DurableStore } from '../../../src/storage/types.ts';
import { minimalPool, writeConfigDir } from '../../support/config-dir.ts';
import { TEST_SECRET } from '../../support/postern-server.ts';
import {
  createTestDatabaseFor,
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  uniqueKeyPrefix,
} from '../../support/services.ts';
import { runPostern } from '../../support/spawn-postern.ts';

const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
const test = serviceTest(serviceTest(anyTest as TestFn, postgres), redis);

/** A migrated database with pool `acme`, the store to look at it, and `postern orgs …` on it. */
async function setup(t: ExecutionContext) {
  const database = await createTestDatabaseFor(t);
  const prefix = uniqueKeyPrefix();
  t.teardown(() => deleteKeysWithPrefix(prefix));
  const publicUrl = 'http://localhost:3999';
  const config = await writeConfigDir({
    server: `redis:\n  key_prefix: "${prefix}"\n`,
    // TOTP among the second factors: an organization with passkeys off may still require MFA.
    pools: {
      acme: `${minimalPool(publicUrl)}authentication:\n  second_factor: [passkey, totp]\n`,
    },
  });
  t.teardown(() => config.remove());
  const env = {
    POSTERN_CONFIG_DIR: config.dir,
    DATABASE_URL: database.url,
    REDIS_URL: redisTestUrl(),
    POSTERN_SECRET: TEST_SECRET,
    PUBLIC_URL: publicUrl,
  };
  const migrated = await runPostern(['migrate'], env);
  t.is(migrated.code, 0, migrated.stderr);
  const durable: DurableStore = await openDurableStore({ url: database.url });
  t.teardown(() => durable.close());
  const orgs = (command: string, ...args: string[]) =>
    runPostern(['orgs', command, '--pool', 'acme', ...args], env);
  return { durable, orgs, env };
}

test('postern orgs creates, lists, updates and deletes organizations and manages their members', async (t) => {
  const { durable, orgs } = await setup(t);
  const ada = await durable.users.create({ poolId: 'acme', email: 'ada@example.com' });
  const bo = await durable.users.create({ poolId: 'acme', email: 'bo@example.com' });
  // What each was signed in with: a grant, as a login leaves it.
  for (const user of [ada, bo])
    await durable
      .oidcModels('acme')
      .upsert('Grant', `grant-${user.id}`, { accountId: user.id, clientId: 'web' }, 3600);

  const created = await orgs('create', '--slug', 'acme-inc', '--name', 'Acme Inc.');
  t.is(created.code, 0, created.stderr);
  const [id, ...fields] = created.stdout.trim().split('\t');
  t.regex(id ?? '', /^[0-9a-f-]{36}$/);
  t.deepEqual(fields, [
    'acme-inc',
    'passkey_login=on',
    'require_mfa=false',
    'allowed_first_factors=pool',
    'Acme Inc.',
  ]);
  const strict = await orgs(
    'create',
    '--slug',
    'globex',
    '--name',
    'Globex',
    '--passkey-login',
    'off',
    '--require-mfa',
    '--allowed-first-factors',
    'email_otp',
  );
  t.is(strict.code, 0, strict.stderr);
  t.regex(
    strict.stdout,
    /\tglobex\tpasskey_login=off\trequire_mfa=true\tallowed_first_factors=email_otp\tGlobex\n$/,
  );

  const listed = await orgs('list');
  t.is(listed.code, 0, listed.stderr);
  t.deepEqual(
    listed.stdout
      .trim()
      .split('\n')
      .map((line) => line.split('\t')[1])
      .sort(),
    ['acme-inc', 'globex'],
    'one line per organization',
  );

  const updated = await orgs(
    'update',
    '--org',
    'globex',
    '--no-require-mfa',
    '--no-allowed-first-factors',
    '--name',
    'Globex Corp',
  );
  t.is(updated.code, 0, updated.stderr);
  t.regex(
    updated.stdout,
    /\tglobex\tpasskey_login=off\trequire_mfa=false\tallowed_first_factors=pool\tGlobex Corp\n$/,
  );

  for (const email of ['Ada@Example.com', 'bo@example.com']) {
    const added = await orgs('add-member', '--org', 'acme-inc', '--email', email);
    t.is(added.code, 0, added.stderr);
    t.regex(added.stdout, /^Added (ada|bo)@example\.com to acme-inc\.\n$/);
  }
  const again = await orgs('add-member', '--org', id!, '--email', 'ada@example.com');
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, 'ada@example.com is already a member of acme-inc.\n');

  const members = await orgs('members', '--org', 'acme-inc');
  t.is(members.code, 0, members.stderr);
  const lines = members.stdout.trim().split('\n');
  t.deepEqual(
    lines.map((line) => line.split('\t').slice(0, 2)),
    [
      [ada.id, 'ada@example.com'],
      [bo.id, 'bo@example.com'],
    ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
  );
  t.regex(lines[0]!.split('\t')[2] ?? '', /^\d{4}-\d\d-\d\dT/);

  const removed = await orgs('remove-member', '--org', 'acme-inc', '--email', 'bo@example.com');
  t.is(removed.code, 0, removed.stderr);
  t.regex(
    removed.stdout,
    /^Removed bo@example\.com from acme-inc; signed out everywhere \(0 session\(s\), 1 app\(s\)\)\.\n$/,
  );
  t.is(await durable.oidcModels('acme').find('Grant', `grant-${bo.id}`), undefined, 'signed out');
  t.truthy(await durable.oidcModels('acme').find('Grant', `grant-${ada.id}`), 'the other member stays');

  const deleted = await orgs('delete', '--org', 'acme-inc');
  t.is(deleted.code, 0, deleted.stderr);
  t.is(
    deleted.stdout,
    `Deleted organization acme-inc (${id}); its 1 member(s) were signed out everywhere.\n`,
  );
  t.is(await durable.oidcModels('acme').find('Grant', `grant-${ada.id}`), undefined, 'its member signed out');
  t.is(await durable.organizations.find('acme', 'acme-inc'), undefined);
  t.truthy(await durable.users.findById('acme', ada.id), 'the users stay');
  t.deepEqual((await orgs('list')).stdout.trim().split('\t')[1], 'globex');

  const events = await durable.auditEvents.list('acme');
  t.deepEqual(
    events.filter((event) => event.event.startsWith('organization_')).map((event) => event.event),
    [
      'organization_deleted',
      'organization_member_removed',
      'organization_member_added',
      'organization_member_added',
      'organization_updated',
      'organization_created',
      'organization_created',
    ],
  );
  for (const event of events) {
    t.like(event.detail, { via: 'cli' }, event.event);
    t.is(event.ip, null, event.event);
  }
  t.deepEqual(events.find((event) => event.event === 'organization_updated')?.detail?.changed, [
    'name',
    'require_mfa',
    'allowed_first_factors',
  ]);
});

test('postern orgs refuses what the admin API refuses, with its sentence and exit 1, writing nothing', async (t) => {
  const { durable, orgs, env } = await setup(t);
  await durable.users.create({ poolId: 'acme', email: 'ada@example.com' });
  t.is((await orgs('create', '--slug', 'taken', '--name', 'Taken')).code, 0);

  const refusals: [string[], RegExp][] = [
    [['create', '--slug', 'Bad Slug', '--name', 'X'], /A slug is 1 to 63 lowercase letters/],
    [['create', '--slug', 'taken', '--name', 'X'], /already has the slug "taken"|has the slug "taken"/],
    [
      ['create', '--slug', 'fine', '--name', 'X', '--allowed-first-factors', 'password'],
      /lists password, which is not a first factor/,
    ],
    [
      ['create', '--slug', 'fine', '--name', 'X', '--passkey-login', 'maybe'],
      /passkey_login is "on" or "off"/,
    ],
    [
      [
        'create',
        '--slug',
        'fine',
        '--name',
        'X',
        '--passkey-login',
        'off',
        '--allowed-first-factors',
        'passkey',
      ],
      /no way to sign in/,
    ],
    [['update', '--org', 'taken'], /Say what to change/],
    [['update', '--org', 'nobody', '--name', 'X'], /no such organization/],
    [['delete', '--org', 'nobody'], /no such organization/],
    [['members', '--org', 'nobody'], /no such organization/],
    [
      ['add-member', '--org', 'taken', '--email', 'nobody@example.com'],
      /no user nobody@example\.com in pool acme/,
    ],
    [['add-member', '--org', 'taken', '--email', 'not-an-email'], /"not-an-email" is not an email address/],
    [['remove-member', '--org', 'taken', '--email', 'ada@example.com'], /no member of this organization/],
  ];
  for (const [args, message] of refusals) {
    const refused = await orgs(...(args as [string, ...string[]]));
    t.is(refused.code, 1, args.join(' '));
    t.regex(refused.stderr, message, args.join(' '));
    t.is(refused.stdout, '', args.join(' '));
  }
  const unknownPool = await runPostern(['orgs', 'list', '--pool', 'nope'], env);
  t.is(unknownPool.code, 1);
  t.regex(unknownPool.stderr, /no pool "nope" \(pools: acme\)/);
  const missing = await orgs('create', '--slug', 'no-name');
  t.is(missing.code, 1);
  t.regex(missing.stderr, /required option '--name <name>'/);

  t.deepEqual(
    (await durable.organizations.list('acme', { limit: 10 })).map((organization) => organization.slug),
    ['taken'],
  );
  const [refusal] = await durable.auditEvents.list('acme', { event: 'organization_created' });
  t.like(refusal, { outcome: 'failure' });
  t.like(refusal?.detail, { via: 'cli', code: 'slug_taken', slug: 'taken' });
});
