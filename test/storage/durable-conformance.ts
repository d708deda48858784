/**
 * The DurableStore conformance suite (dex-style): PostgreSQL and PGlite must
 * pass it unchanged. Beyond behaviour it pins the JS types each column comes
 * back as, because pg and PGlite disagree on bytea, bigint and jsonb and the
 * repositories must hide that.
 *
 * One store per test file, opened (and migrated) on first use: PGlite takes
 * seconds to start. Every test works in its own pool id, so tests share the
 * store and run concurrently.
 */
import { randomBytes } from 'node:crypto';
import type { TestFn } from 'ava';
import { migrations } from '../../migrations/index.ts';
import { LimitExceededError, UniqueViolationError } from '../../src/storage/errors.ts';
import type {
  DurableStore,
  MigrationResult,
  NewOrganization,
  NewPasskey,
  SigningKeyRecord,
} from '../../src/storage/types.ts';
import { registerOidcModelConformance } from './oidc-model-conformance.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const unique = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

/** A passkey as a registration ceremony would produce it. */
function newPasskey(
  overrides: Partial<NewPasskey> = {},
): Omit<NewPasskey, 'userId' | 'poolId'> & Partial<NewPasskey> {
  return {
    credentialId: randomBytes(16).toString('base64url'),
    publicKey: new Uint8Array([0xa5, 0x01, 0x02, 0x03, 0x26, 0x00, 0xff, ...randomBytes(70)]),
    counter: 0,
    transports: ['internal', 'hybrid'],
    aaguid: 'fbfc3007-154e-4ecc-8c0b-6e020557d7bd',
    backupEligible: true,
    backupState: true,
    uvInitialized: true,
    attestationFormat: 'none',
    name: 'iCloud Keychain',
    discoverable: true,
    ...overrides,
  };
}

function signingKey(poolId: string, alg: SigningKeyRecord['alg'], createdAt: Date): SigningKeyRecord {
  return {
    poolId,
    kid: unique(alg),
    alg,
    encryptedJwk: `sealed:${randomBytes(8).toString('hex')}`,
    createdAt,
    retiredAt: null,
  };
}

/**
 * Registers the suite under `name`. `open` is called once, on the first test
 * that runs, and the store is migrated then; it is closed after the file's tests.
 */
export function registerDurableConformance(
  test: TestFn,
  name: string,
  open: () => Promise<DurableStore>,
): void {
  let opened: Promise<{ store: DurableStore; firstMigration: MigrationResult }> | undefined;
  const setup = () => {
    opened ??= (async () => {
      const store = await open();
      return { store, firstMigration: await store.migrate() };
    })();
    return opened;
  };
  const store = async () => (await setup()).store;
  test.after.always(`${name}: close the store`, async () => {
    if (opened) await (await opened).store.close().catch(() => {});
  });

  const newUser = async (poolId = unique('pool'), email = `${unique('user')}@example.com`) =>
    (await store()).users.create({ poolId, email });

  // ---------------------------------------------------------------- migrations

  test(`${name}: migrate applies every migration once, a second run applies nothing`, async (t) => {
    const { store: s, firstMigration } = await setup();
    t.deepEqual(
      firstMigration.applied,
      migrations.map((migration) => migration.name),
    );
    t.deepEqual(await s.migrate(), { applied: [] });
    t.deepEqual(await s.pendingMigrations(), []);
  });

  test(`${name}: concurrent migrate calls on one store both succeed`, async (t) => {
    const s = await store();
    t.deepEqual(await Promise.all([s.migrate(), s.migrate()]), [{ applied: [] }, { applied: [] }]);
  });

  test(`${name}: ping resolves`, async (t) => {
    const s = await store();
    await t.notThrowsAsync(() => s.ping());
  });

  // --------------------------------------------------------------------- users

  test(`${name}: users are created with a normalised email and a random WebAuthn user handle`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const user = await s.users.create({ poolId, email: '  Ada.Lovelace@Example.COM ', name: 'Ada' });
    t.is(user.email, 'ada.lovelace@example.com');
    t.is(user.poolId, poolId);
    t.is(user.name, 'Ada');
    t.false(user.emailVerified);
    t.regex(user.webauthnUserId, /^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url');
    t.is(Buffer.from(user.webauthnUserId, 'base64url').length, 32);
    t.true(user.createdAt instanceof Date);
    t.true(user.updatedAt instanceof Date);
    const other = await s.users.create({ poolId, email: 'other@example.com', emailVerified: true });
    t.not(other.webauthnUserId, user.webauthnUserId);
    t.true(other.emailVerified);
    t.is(other.name, null);
  });

  test(`${name}: users are found by id, email (any case) and WebAuthn user handle, within their pool`, async (t) => {
    const s = await store();
    const user = await newUser();
    t.deepEqual(await s.users.findById(user.poolId, user.id), user);
    t.deepEqual(await s.users.findByEmail(user.poolId, ` ${user.email.toUpperCase()} `), user);
    t.deepEqual(await s.users.findByWebauthnUserId(user.poolId, user.webauthnUserId), user);
    t.is(await s.users.findById(unique('pool'), user.id), undefined);
    t.is(await s.users.findByEmail(unique('pool'), user.email), undefined);
    t.is(await s.users.findById(user.poolId, 'not-a-uuid'), undefined, 'a malformed id finds nothing');
  });

  test(`${name}: findAccount gives the user with their passkeys, unused recovery codes and whether they have a password and a TOTP`, async (t) => {
    const s = await store();
    const user = await newUser();
    t.deepEqual(await s.users.findAccount(user.poolId, user.id), {
      user,
      passkeys: 0,
      unusedRecoveryCodes: 0,
      hasPassword: false,
      hasTotp: false,
      organizations: [],
    });
    await s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: user.id });
    await s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: user.id });
    await s.recoveryCodes.replace(user.poolId, user.id, ['h1', 'h2', 'h3']);
    await s.recoveryCodes.use(user.poolId, user.id, 'h2');
    await s.users.setPasswordHash(user.poolId, user.id, '$argon2id$v=19$x');
    await s.totp.set(user.poolId, user.id, 'sealed:totp', null);
    // Another user's and another pool's credentials do not count.
    const other = await newUser(user.poolId);
    await s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: other.id });
    t.like(await s.users.findAccount(user.poolId, user.id), {
      passkeys: 2,
      unusedRecoveryCodes: 2,
      hasPassword: true,
      hasTotp: true,
    });
    t.like(await s.users.findAccount(user.poolId, other.id), { passkeys: 1, hasTotp: false });
    await s.totp.delete(user.poolId, user.id);
    t.like(await s.users.findAccount(user.poolId, user.id), { hasTotp: false }, 'gone with the TOTP');
    t.is(await s.users.findAccount(unique('pool'), user.id), undefined);
    t.is(await s.users.findAccount(user.poolId, 'not-a-uuid'), undefined);
  });

  test(`${name}: findWithOwner gives a passkey with its owner's account, in its pool only`, async (t) => {
    const s = await store();
    const user = await newUser();
    const passkey = await s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: user.id });
    await s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: user.id });
    await s.recoveryCodes.replace(user.poolId, user.id, ['h1']);
    t.deepEqual(await s.passkeys.findWithOwner(user.poolId, passkey.credentialId), {
      passkey,
      owner: {
        user,
        passkeys: 2,
        unusedRecoveryCodes: 1,
        hasPassword: false,
        hasTotp: false,
        organizations: [],
      },
    });
    await s.totp.set(user.poolId, user.id, 'sealed:totp', 7);
    t.like(await s.passkeys.findWithOwner(user.poolId, passkey.credentialId), { owner: { hasTotp: true } });
    t.is(await s.passkeys.findWithOwner(unique('pool'), passkey.credentialId), undefined);
    t.is(await s.passkeys.findWithOwner(user.poolId, 'no-such-credential'), undefined);
  });

  test(`${name}: an email is unique per pool (UniqueViolationError), and free in another pool`, async (t) => {
    const s = await store();
    const user = await newUser();
    const error = await t.throwsAsync(
      () => s.users.create({ poolId: user.poolId, email: user.email.toUpperCase() }),
      {
        instanceOf: UniqueViolationError,
      },
    );
    t.is(error?.constraint, 'users_pool_id_email_unique');
    await t.notThrowsAsync(() => s.users.create({ poolId: unique('pool'), email: user.email }));
  });

  test(`${name}: of 5 concurrent sign-ups with one email exactly one succeeds`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => s.users.create({ poolId, email: 'race@example.com' })),
    );
    t.is(results.filter((result) => result.status === 'fulfilled').length, 1);
    for (const result of results) {
      if (result.status === 'rejected') t.true(result.reason instanceof UniqueViolationError);
    }
  });

  test(`${name}: createWithPasskey stores the user and the passkey together`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const handle = Buffer.alloc(32, 7).toString('base64url');
    const { user, passkey } = await s.users.createWithPasskey(
      { poolId, email: 'new@example.com', webauthnUserId: handle },
      newPasskey(),
    );
    t.is(user.webauthnUserId, handle, 'the handle the registration ceremony used is kept');
    t.is(passkey.userId, user.id);
    t.is(passkey.poolId, poolId);
    t.deepEqual(await s.passkeys.listByUser(poolId, user.id), [passkey]);
    t.deepEqual(await s.users.findByEmail(poolId, 'new@example.com'), user);
  });

  test(`${name}: createWithPasskey with a taken credential id leaves no user behind`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const { passkey } = await s.users.createWithPasskey({ poolId, email: 'first@example.com' }, newPasskey());
    const error = await t.throwsAsync(
      () =>
        s.users.createWithPasskey(
          { poolId, email: 'second@example.com' },
          newPasskey({ credentialId: passkey.credentialId }),
        ),
      { instanceOf: UniqueViolationError },
    );
    t.is(error?.constraint, 'passkeys_pool_id_credential_id_unique');
    t.is(await s.users.findByEmail(poolId, 'second@example.com'), undefined);
  });

  test(`${name}: createWithPasskey with a taken email stores nothing`, async (t) => {
    const s = await store();
    const user = await newUser();
    const passkey = newPasskey();
    await t.throwsAsync(
      () => s.users.createWithPasskey({ poolId: user.poolId, email: user.email }, passkey),
      {
        instanceOf: UniqueViolationError,
      },
    );
    t.is(await s.passkeys.findByCredentialId(user.poolId, passkey.credentialId), undefined);
  });

  test(`${name}: users are listed by id ascending, a page at a time after an exclusive cursor, within their pool`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const created = await Promise.all(
      Array.from({ length: 5 }, (_, index) => s.users.create({ poolId, email: `u${index}@example.com` })),
    );
    await newUser(unique('pool'));
    await newUser(unique('pool'));
    const sorted = [...created].sort((a, b) => (a.id < b.id ? -1 : 1));
    const ids = sorted.map((user) => user.id);

    t.deepEqual(await s.users.list(poolId, { limit: 10 }), sorted, 'whole users, no other pool among them');
    t.deepEqual(
      (await s.users.list(poolId, { limit: 2 })).map((user) => user.id),
      ids.slice(0, 2),
    );
    t.deepEqual(
      (await s.users.list(poolId, { after: ids[1]!, limit: 2 })).map((user) => user.id),
      ids.slice(2, 4),
      'the cursor itself is not repeated',
    );
    t.deepEqual(
      (await s.users.list(poolId, { after: ids[3]!, limit: 2 })).map((user) => user.id),
      ids.slice(4),
      'the last page is short',
    );
    t.deepEqual(await s.users.list(poolId, { after: ids[4]!, limit: 2 }), []);
    t.deepEqual(
      (await s.users.list(poolId, { after: '00000000-0000-0000-0000-000000000000', limit: 10 })).map(
        (user) => user.id,
      ),
      ids,
      'a cursor need not be a user',
    );
    t.deepEqual(
      (await s.users.list(poolId, { after: ids[1]!.toUpperCase(), limit: 10 })).map((user) => user.id),
      ids.slice(2),
      'a uuid in capitals is the same cursor',
    );
    t.deepEqual(await s.users.list(poolId, { after: 'not-a-uuid', limit: 10 }), [], 'a malformed cursor');
    t.deepEqual(await s.users.list(poolId, { limit: 0 }), []);
    t.deepEqual(await s.users.list(unique('pool'), { limit: 10 }), [], 'an empty pool');
  });

  test(`${name}: deleting a user erases their passkeys, recovery codes, TOTP, password, grants and refresh tokens, and keeps their audit events`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const enrolled = async (email: string) => {
      const { user, passkey } = await s.users.createWithPasskey(
        { poolId, email, passwordHash: '$argon2id$v=19$x' },
        newPasskey(),
      );
      await s.passkeys.create({ ...newPasskey(), poolId, userId: user.id });
      await s.recoveryCodes.replace(poolId, user.id, ['h1', 'h2']);
      await s.totp.set(poolId, user.id, `sealed:${user.id}`, 1);
      const models = s.oidcModels(poolId);
      await models.upsert('Grant', `grant-${user.id}`, { accountId: user.id }, 3600);
      await models.upsert(
        'RefreshToken',
        `refresh-${user.id}`,
        { accountId: user.id, grantId: `grant-${user.id}` },
        3600,
      );
      await s.auditEvents.append({ poolId, event: 'sign_in', outcome: 'success', userId: user.id });
      return { user, passkey };
    };
    const { user, passkey } = await enrolled('gone@example.com');
    const { user: other, passkey: othersPasskey } = await enrolled('stays@example.com');
    const elsewhere = s.oidcModels(unique('pool'));
    await elsewhere.upsert('Grant', 'same-account-other-pool', { accountId: user.id }, 3600);

    t.true(await s.users.delete(poolId, user.id));

    t.is(await s.users.findById(poolId, user.id), undefined);
    t.is(await s.users.findByEmail(poolId, 'gone@example.com'), undefined);
    t.is(await s.users.getPasswordHash(poolId, user.id), undefined);
    t.is(await s.passkeys.findByCredentialId(poolId, passkey.credentialId), undefined);
    t.is(await s.passkeys.countByUser(poolId, user.id), 0);
    t.is(await s.recoveryCodes.countUnused(poolId, user.id), 0);
    t.is(await s.recoveryCodes.use(poolId, user.id, 'h1'), undefined);
    t.is(await s.totp.find(poolId, user.id), undefined, 'the TOTP row went with the user');
    t.false(await s.totp.recordUse(poolId, user.id, 2));
    const models = s.oidcModels(poolId);
    t.is(await models.find('Grant', `grant-${user.id}`), undefined);
    t.is(await models.find('RefreshToken', `refresh-${user.id}`), undefined);
    t.deepEqual(await models.listByAccountId('Grant', user.id), []);
    t.deepEqual(await models.listByAccountId('RefreshToken', user.id), []);
    t.truthy(
      await elsewhere.find('Grant', 'same-account-other-pool'),
      "another pool's rows are not the user's",
    );
    t.deepEqual(
      (await s.auditEvents.list(poolId, { userId: user.id })).map((event) => event.event),
      ['sign_in'],
      'the audit trail outlives the user',
    );

    t.deepEqual(await s.users.findAccount(poolId, other.id), {
      user: other,
      passkeys: 2,
      unusedRecoveryCodes: 2,
      hasPassword: true,
      hasTotp: true,
      organizations: [],
    });
    t.like(await s.totp.find(poolId, other.id), { sealedSecret: `sealed:${other.id}`, lastUsedStep: 1 });
    t.truthy(await s.passkeys.findByCredentialId(poolId, othersPasskey.credentialId));
    t.truthy(await models.find('Grant', `grant-${other.id}`));
    t.truthy(await models.find('RefreshToken', `refresh-${other.id}`));

    t.false(await s.users.delete(poolId, user.id), 'already gone');
  });

  test(`${name}: deleting an unknown, malformed or other pool's user id is false and erases nothing`, async (t) => {
    const s = await store();
    const user = await newUser();
    const grants = s.oidcModels(user.poolId);
    await grants.upsert('Grant', `grant-${user.id}`, { accountId: user.id }, 3600);
    t.false(await s.users.delete(user.poolId, '00000000-0000-0000-0000-000000000000'));
    t.false(await s.users.delete(user.poolId, 'not-a-uuid'));
    t.false(await s.users.delete(unique('pool'), user.id));
    t.deepEqual(await s.users.findById(user.poolId, user.id), user);
    t.truthy(await grants.find('Grant', `grant-${user.id}`));
  });

  // ------------------------------------------------------------------ passkeys

  test(`${name}: passkey columns come back with the same JS types on every backend`, async (t) => {
    const s = await store();
    const user = await newUser();
    const input = newPasskey({
      poolId: user.poolId,
      userId: user.id,
      counter: 4_294_967_295,
      transports: ['usb', 'nfc'],
    });
    const created = await s.passkeys.create({ ...input, poolId: user.poolId, userId: user.id });
    const found = await s.passkeys.findByCredentialId(user.poolId, input.credentialId);
    for (const passkey of [created, found]) {
      if (!passkey) return t.fail('passkey not found');
      t.is(
        Object.getPrototypeOf(passkey.publicKey),
        Uint8Array.prototype,
        'a plain Uint8Array, not a Buffer',
      );
      t.deepEqual([...passkey.publicKey], [...input.publicKey]);
      t.is(passkey.counter, 4_294_967_295);
      t.is(typeof passkey.counter, 'number');
      t.deepEqual(passkey.transports, ['usb', 'nfc']);
      t.true(Array.isArray(passkey.transports));
      t.true(passkey.createdAt instanceof Date);
      t.is(passkey.lastUsedAt, null);
      t.like(passkey, {
        aaguid: input.aaguid,
        backupEligible: true,
        backupState: true,
        uvInitialized: true,
        attestationFormat: 'none',
        name: 'iCloud Keychain',
      });
    }
    t.deepEqual(found, created);
  });

  test(`${name}: an empty transports list round-trips as an empty array`, async (t) => {
    const s = await store();
    const user = await newUser();
    const created = await s.passkeys.create({
      ...newPasskey({ transports: [] }),
      poolId: user.poolId,
      userId: user.id,
    });
    t.deepEqual((await s.passkeys.findByCredentialId(user.poolId, created.credentialId))?.transports, []);
  });

  test(`${name}: whether a passkey is discoverable round-trips as true, false or null`, async (t) => {
    const s = await store();
    const user = await newUser();
    for (const discoverable of [true, false, null]) {
      const created = await s.passkeys.create({
        ...newPasskey({ discoverable }),
        poolId: user.poolId,
        userId: user.id,
      });
      t.is(created.discoverable, discoverable);
      t.is(
        (await s.passkeys.findByCredentialId(user.poolId, created.credentialId))?.discoverable,
        discoverable,
      );
      t.is(
        (await s.passkeys.findWithOwner(user.poolId, created.credentialId))?.passkey.discoverable,
        discoverable,
      );
    }
    t.deepEqual(
      (await s.passkeys.listByUser(user.poolId, user.id)).map((passkey) => passkey.discoverable),
      [true, false, null],
    );
    const { passkey } = await s.users.createWithPasskey(
      { poolId: user.poolId, email: `${unique('signup')}@example.com` },
      newPasskey({ discoverable: false }),
    );
    t.is(passkey.discoverable, false, 'sign-up stores it too');
  });

  test(`${name}: a credential id is unique per pool (UniqueViolationError), and free in another pool`, async (t) => {
    const s = await store();
    const [user, stranger] = [await newUser(), await newUser()];
    const passkey = newPasskey();
    await s.passkeys.create({ ...passkey, poolId: user.poolId, userId: user.id });
    const error = await t.throwsAsync(
      () => s.passkeys.create({ ...passkey, poolId: user.poolId, userId: user.id }),
      {
        instanceOf: UniqueViolationError,
      },
    );
    t.is(error?.constraint, 'passkeys_pool_id_credential_id_unique');
    await t.notThrowsAsync(() =>
      s.passkeys.create({ ...passkey, poolId: stranger.poolId, userId: stranger.id }),
    );
  });

  test(`${name}: maxPerUser holds under concurrency (limit 3, 6 concurrent registrations)`, async (t) => {
    const s = await store();
    const user = await newUser();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: user.id }, { maxPerUser: 3 }),
      ),
    );
    const rejected = results.filter((result) => result.status === 'rejected');
    t.is(results.length - rejected.length, 3);
    t.is(rejected.length, 3);
    for (const result of rejected) {
      t.true(result.reason instanceof LimitExceededError);
      t.is((result.reason as LimitExceededError).limit, 3);
    }
    t.is(await s.passkeys.countByUser(user.poolId, user.id), 3);
  });

  /** How many passkeys `poolId` stores, over its users (at most 100). */
  const poolPasskeys = async (poolId: string) => {
    const s = await store();
    const users = await s.users.list(poolId, { limit: 100 });
    const counts = await Promise.all(users.map((user) => s.passkeys.countByUser(poolId, user.id)));
    return counts.reduce((sum, count) => sum + count, 0);
  };

  test(`${name}: maxPerPool refuses the pool's next passkey whoever registers it, and leaves other pools alone`, async (t) => {
    const s = await store();
    const ada = await newUser();
    const bob = await newUser(ada.poolId);
    const other = await newUser();
    const add = (
      user: { id: string; poolId: string },
      options: { maxPerUser?: number; maxPerPool?: number },
    ) => s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: user.id }, options);

    await add(ada, { maxPerPool: 2 });
    await add(bob, { maxPerPool: 2, maxPerUser: 5 });
    const refused = await t.throwsAsync(() => add(ada, { maxPerPool: 2 }), {
      instanceOf: LimitExceededError,
    });
    t.like(refused, { scope: 'per_pool', limit: 2 });
    await t.throwsAsync(() => add(bob, { maxPerPool: 2, maxPerUser: 5 }), {
      instanceOf: LimitExceededError,
    });
    t.is(await poolPasskeys(ada.poolId), 2, 'nothing written past the ceiling');

    await add(other, { maxPerPool: 2 });
    await t.notThrowsAsync(() => add(other, { maxPerPool: 2 }), 'another pool counts its own');
    const perUser = await t.throwsAsync(() => add(other, { maxPerUser: 2, maxPerPool: 10 }), {
      instanceOf: LimitExceededError,
    });
    t.like(perUser, { scope: 'per_user', limit: 2 }, 'the per-user limit still says it is the user’s');
  });

  test(`${name}: maxPerPool holds under concurrency (room for 2, 5 concurrent registrations)`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const first = await newUser(poolId);
    await s.passkeys.create({ ...newPasskey(), poolId, userId: first.id });
    const users = await Promise.all(Array.from({ length: 5 }, () => newUser(poolId)));
    const results = await Promise.allSettled(
      users.map((user) =>
        s.passkeys.create({ ...newPasskey(), poolId, userId: user.id }, { maxPerPool: 3, maxPerUser: 10 }),
      ),
    );
    const rejected = results.filter((result) => result.status === 'rejected');
    t.is(results.length - rejected.length, 2);
    for (const result of rejected) t.like(result.reason, { name: 'LimitExceededError', scope: 'per_pool' });
    t.is(await poolPasskeys(poolId), 3);
  });

  test(`${name}: sign-ups and added passkeys share the pool's ceiling under concurrency`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const existing = await Promise.all([newUser(poolId), newUser(poolId)]);
    const results = await Promise.allSettled([
      ...Array.from({ length: 3 }, (_, index) =>
        s.users.createWithPasskey({ poolId, email: `signup-${index}@example.com` }, newPasskey(), {
          maxPerPool: 2,
        }),
      ),
      ...existing.map((user) =>
        s.passkeys.create({ ...newPasskey(), poolId, userId: user.id }, { maxPerPool: 2 }),
      ),
    ]);
    const rejected = results.filter((result) => result.status === 'rejected');
    t.is(results.length - rejected.length, 2);
    for (const result of rejected) t.like(result.reason, { name: 'LimitExceededError', scope: 'per_pool' });
    t.is(await poolPasskeys(poolId), 2);
    const signedUp = results.slice(0, 3).filter((result) => result.status === 'fulfilled').length;
    t.is((await s.users.list(poolId, { limit: 100 })).length, 2 + signedUp, 'a refused sign-up left no user');
  });

  test(`${name}: createWithPasskey at the pool's ceiling creates no user`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    await s.users.createWithPasskey({ poolId, email: 'first@example.com' }, newPasskey(), { maxPerPool: 1 });
    const passkey = newPasskey();
    const refused = await t.throwsAsync(
      () => s.users.createWithPasskey({ poolId, email: 'second@example.com' }, passkey, { maxPerPool: 1 }),
      { instanceOf: LimitExceededError },
    );
    t.like(refused, { scope: 'per_pool', limit: 1 });
    t.is(await s.users.findByEmail(poolId, 'second@example.com'), undefined);
    t.is(await s.passkeys.findByCredentialId(poolId, passkey.credentialId), undefined);
    await t.notThrowsAsync(
      () =>
        s.users.createWithPasskey({ poolId, email: 'second@example.com' }, newPasskey(), { maxPerPool: 2 }),
      'the email was not taken by the refused sign-up',
    );
  });

  test(`${name}: passkeys are listed and counted per user, oldest first`, async (t) => {
    const s = await store();
    const [user, other] = [await newUser(), await newUser()];
    const first = await s.passkeys.create({
      ...newPasskey({ name: 'first' }),
      poolId: user.poolId,
      userId: user.id,
    });
    const second = await s.passkeys.create({
      ...newPasskey({ name: 'second' }),
      poolId: user.poolId,
      userId: user.id,
    });
    await s.passkeys.create({ ...newPasskey(), poolId: other.poolId, userId: other.id });
    t.deepEqual(
      (await s.passkeys.listByUser(user.poolId, user.id)).map((passkey) => passkey.id),
      [first.id, second.id],
    );
    t.is(await s.passkeys.countByUser(user.poolId, user.id), 2);
    t.deepEqual(await s.passkeys.listByUser(other.poolId, user.id), [], 'another pool sees none');
    t.is(await s.passkeys.findByCredentialId(other.poolId, first.credentialId), undefined);
  });

  test(`${name}: recordUse stores the counter, backup state and time of use`, async (t) => {
    const s = await store();
    const user = await newUser();
    const passkey = await s.passkeys.create({
      ...newPasskey({ backupState: false }),
      poolId: user.poolId,
      userId: user.id,
    });
    const usedAt = new Date('2031-02-03T04:05:06.789Z');
    t.true(
      await s.passkeys.recordUse(passkey.id, {
        previousCounter: passkey.counter,
        counter: 42,
        backupState: true,
        usedAt,
      }),
    );
    const found = await s.passkeys.findByCredentialId(user.poolId, passkey.credentialId);
    t.is(found?.counter, 42);
    t.true(found?.backupState);
    t.deepEqual(found?.lastUsedAt, usedAt);
  });

  test(`${name}: recordUse sets the counter only from the value it was read at`, async (t) => {
    const s = await store();
    const user = await newUser();
    const passkey = await s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: user.id });
    const use = (counter: number) =>
      s.passkeys.recordUse(passkey.id, {
        previousCounter: passkey.counter,
        counter,
        backupState: false,
        usedAt: new Date(),
      });
    const results = await Promise.all([use(passkey.counter + 1), use(passkey.counter + 1)]);
    t.deepEqual([...results].sort(), [false, true], 'of two uses of one counter value, one is recorded');
    t.false(await use(passkey.counter + 2), 'a stale counter is not written');
    t.is(
      (await s.passkeys.findByCredentialId(user.poolId, passkey.credentialId))?.counter,
      passkey.counter + 1,
    );
  });

  test(`${name}: rename and delete act only on the user's own passkey in the pool`, async (t) => {
    const s = await store();
    const [user, other] = [await newUser(), await newUser()];
    const passkey = await s.passkeys.create({ ...newPasskey(), poolId: user.poolId, userId: user.id });

    t.false(await s.passkeys.rename(user.poolId, other.id, passkey.id, 'stolen'), 'another user');
    t.false(await s.passkeys.rename(other.poolId, user.id, passkey.id, 'stolen'), 'another pool');
    t.true(await s.passkeys.rename(user.poolId, user.id, passkey.id, 'Work laptop'));
    t.is((await s.passkeys.findByCredentialId(user.poolId, passkey.credentialId))?.name, 'Work laptop');

    t.false(await s.passkeys.delete(user.poolId, other.id, passkey.id), 'another user');
    t.false(await s.passkeys.delete(other.poolId, user.id, passkey.id), 'another pool');
    t.false(await s.passkeys.delete(user.poolId, user.id, 'not-a-uuid'), 'a malformed id');
    t.true(await s.passkeys.delete(user.poolId, user.id, passkey.id));
    t.is(await s.passkeys.findByCredentialId(user.poolId, passkey.credentialId), undefined);
    t.false(await s.passkeys.delete(user.poolId, user.id, passkey.id), 'already gone');
  });

  // -------------------------------------------------------------- signing keys

  test(`${name}: signing keys are added, listed newest first, retired by newer keys and deleted once retired`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const t0 = new Date('2030-01-01T00:00:00Z');
    const t1 = new Date('2030-02-01T00:00:00Z');
    const first = [signingKey(poolId, 'ES256', t0), signingKey(poolId, 'RS256', t0)];
    t.true(await s.signingKeys.add(poolId, first));
    t.deepEqual(await s.signingKeys.list(unique('pool')), [], 'another pool has none');

    const rotated = [signingKey(poolId, 'ES256', t1)];
    t.true(await s.signingKeys.add(poolId, rotated));
    const listed = await s.signingKeys.list(poolId);
    t.deepEqual(
      listed.map((key) => key.kid),
      [rotated[0]!.kid, ...first.map((key) => key.kid).sort()],
    );
    const byKid = new Map(listed.map((key) => [key.kid, key]));
    t.deepEqual(byKid.get(rotated[0]!.kid), rotated[0]);
    t.deepEqual(byKid.get(first[0]!.kid)?.retiredAt, t1, 'the ES256 key is retired as of its successor');
    t.is(byKid.get(first[1]!.kid)?.retiredAt, null, 'the RS256 key still signs');

    t.is(await s.signingKeys.deleteRetiredBefore(poolId, t1), 0, 'retired exactly then: kept');
    t.is(await s.signingKeys.deleteRetiredBefore(poolId, new Date(t1.getTime() + 1)), 1);
    t.deepEqual(
      (await s.signingKeys.list(poolId)).map((key) => key.kid).sort(),
      [rotated[0]!.kid, first[1]!.kid].sort(),
    );
  });

  test(`${name}: signing keys added with retireReplacedAt retire their predecessors as of then`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const t0 = new Date('2030-01-01T00:00:00Z');
    const switchAt = new Date('2030-01-01T00:01:00Z');
    const first = signingKey(poolId, 'ES256', t0);
    await s.signingKeys.add(poolId, [first]);
    const second = signingKey(poolId, 'ES256', new Date('2030-01-01T00:00:01Z'));
    t.true(await s.signingKeys.add(poolId, [second], { retireReplacedAt: switchAt }));
    const third = signingKey(poolId, 'ES256', new Date('2030-01-01T00:00:02Z'));
    await s.signingKeys.add(poolId, [third], { retireReplacedAt: new Date('2030-01-01T00:01:02Z') });
    const byKid = new Map((await s.signingKeys.list(poolId)).map((key) => [key.kid, key.retiredAt]));
    t.deepEqual(byKid.get(first.kid), switchAt, 'a key already retiring keeps its time');
    t.deepEqual(byKid.get(second.kid), new Date('2030-01-01T00:01:02Z'));
    t.is(byKid.get(third.kid), null);
  });

  test(`${name}: signing keys add with onlyIfNone adds nothing when the pool has keys`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const now = new Date();
    t.true(await s.signingKeys.add(poolId, [signingKey(poolId, 'ES256', now)], { onlyIfNone: true }));
    t.false(await s.signingKeys.add(poolId, [signingKey(poolId, 'ES256', now)], { onlyIfNone: true }));
    t.is((await s.signingKeys.list(poolId)).length, 1);
  });

  test(`${name}: of two concurrent first-start adds with onlyIfNone exactly one adds`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const now = new Date();
    const sets = [0, 1].map(() => [signingKey(poolId, 'ES256', now), signingKey(poolId, 'RS256', now)]);
    const results = await Promise.all(
      sets.map((keys) => s.signingKeys.add(poolId, keys, { onlyIfNone: true })),
    );
    t.deepEqual([...results].sort(), [false, true]);
    const winner = sets[results.indexOf(true)]!;
    t.deepEqual(
      (await s.signingKeys.list(poolId)).map((key) => key.kid).sort(),
      winner.map((key) => key.kid).sort(),
    );
  });

  // -------------------------------------------------------------- audit events

  test(`${name}: a password hash is set at sign-up or later, and read back only by its own method`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const withPassword = await s.users.create({
      poolId,
      email: 'pw@example.com',
      passwordHash: '$argon2id$v=19$first',
    });
    const without = await s.users.create({ poolId, email: 'nopw@example.com' });
    t.false('passwordHash' in withPassword, 'the User object never carries the hash');
    t.is(await s.users.getPasswordHash(poolId, withPassword.id), '$argon2id$v=19$first');
    t.is(await s.users.getPasswordHash(poolId, without.id), undefined);
    t.true(await s.users.setPasswordHash(poolId, without.id, '$argon2id$v=19$second'));
    t.is(await s.users.getPasswordHash(poolId, without.id), '$argon2id$v=19$second');
    t.false(await s.users.setPasswordHash(unique('other-pool'), without.id, 'x'), 'scoped by pool');
    t.is(await s.users.getPasswordHash(unique('other-pool'), without.id), undefined);
    t.false(await s.users.setPasswordHash(poolId, 'not-a-uuid', 'x'));
  });

  test(`${name}: the passkey offer's last decline is recorded on the user`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const user = await s.users.create({ poolId, email: 'offer@example.com' });
    t.is(user.enrollPromptedAt, null);
    const at = new Date('2026-11-01T10:00:00Z');
    await s.users.recordEnrollPrompt(poolId, user.id, at);
    t.is((await s.users.findById(poolId, user.id))?.enrollPromptedAt?.getTime(), at.getTime());
  });

  test(`${name}: recovery codes are used once, counted, and replaced as a set`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const user = await s.users.create({ poolId, email: 'rc@example.com' });
    await s.recoveryCodes.replace(poolId, user.id, ['h1', 'h2', 'h3']);
    t.is(await s.recoveryCodes.countUnused(poolId, user.id), 3);
    t.is(await s.recoveryCodes.use(poolId, user.id, 'h2'), 2);
    t.is(await s.recoveryCodes.use(poolId, user.id, 'h2'), undefined, 'a used code is spent');
    t.is(await s.recoveryCodes.use(poolId, user.id, 'nope'), undefined);
    t.is(await s.recoveryCodes.use(unique('other-pool'), user.id, 'h1'), undefined, 'scoped by pool');
    await s.recoveryCodes.replace(poolId, user.id, ['n1', 'n2']);
    t.is(await s.recoveryCodes.use(poolId, user.id, 'h1'), undefined, 'the old set stops working');
    t.is(await s.recoveryCodes.countUnused(poolId, user.id), 2);
  });

  test(`${name}: of 8 concurrent uses of one recovery code exactly one succeeds`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const user = await s.users.create({ poolId, email: 'race@example.com' });
    await s.recoveryCodes.replace(poolId, user.id, ['a', 'b']);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => s.recoveryCodes.use(poolId, user.id, 'a')),
    );
    t.deepEqual(
      results.filter((result) => result !== undefined),
      [1],
    );
  });

  // ---------------------------------------------------------------------- totp

  test(`${name}: a TOTP is set, found with the same JS types on every backend, and replaced as a whole`, async (t) => {
    const s = await store();
    const user = await newUser();
    const { poolId } = user;
    t.is(await s.totp.find(poolId, user.id), undefined, 'not enrolled');
    t.true(await s.totp.set(poolId, user.id, 'sealed:first', null));
    const first = await s.totp.find(poolId, user.id);
    t.like(first, { poolId, userId: user.id, sealedSecret: 'sealed:first', lastUsedStep: null });
    t.true(first?.createdAt instanceof Date);

    // A step beyond 2^31 (bigint): pg hands bigint back as a string, the repository as a number.
    const step = 2 ** 33 + 5;
    t.true(await s.totp.set(poolId, user.id, 'sealed:second', step));
    const second = await s.totp.find(poolId, user.id);
    t.like(second, { sealedSecret: 'sealed:second', lastUsedStep: step });
    t.is(typeof second?.lastUsedStep, 'number');
    t.true(await s.totp.recordUse(poolId, user.id, step + 10));

    t.true(await s.totp.set(poolId, user.id, 'sealed:third', 100));
    t.like(
      await s.totp.find(poolId, user.id),
      { sealedSecret: 'sealed:third', lastUsedStep: 100 },
      'replacing resets the last used step to the one given',
    );
    t.true(await s.totp.recordUse(poolId, user.id, 101), 'the old step no longer blocks');
    t.true(await s.totp.set(poolId, user.id, 'sealed:fourth', null));
    t.like(await s.totp.find(poolId, user.id), { lastUsedStep: null }, 'and to null');
  });

  test(`${name}: a TOTP is set only for a user of the pool`, async (t) => {
    const s = await store();
    const user = await newUser();
    t.false(await s.totp.set(unique('pool'), user.id, 'sealed:x', null), "another pool's user");
    t.false(await s.totp.set(user.poolId, '00000000-0000-0000-0000-000000000000', 'sealed:x', null));
    t.false(await s.totp.set(user.poolId, 'not-a-uuid', 'sealed:x', null));
    t.is(await s.totp.find(user.poolId, user.id), undefined);
  });

  test(`${name}: recordUse accepts only a step later than the last accepted one`, async (t) => {
    const s = await store();
    const user = await newUser();
    const { poolId } = user;
    t.false(await s.totp.recordUse(poolId, user.id, 10), 'no TOTP: nothing to record');
    await s.totp.set(poolId, user.id, 'sealed:x', null);
    t.true(await s.totp.recordUse(poolId, user.id, 10), 'the first use');
    t.false(await s.totp.recordUse(poolId, user.id, 10), 'the same step is a replay');
    t.false(await s.totp.recordUse(poolId, user.id, 9), 'an earlier step is a replay');
    t.is((await s.totp.find(poolId, user.id))?.lastUsedStep, 10, 'a refused use changes nothing');
    t.true(await s.totp.recordUse(poolId, user.id, 11));
    t.true(await s.totp.recordUse(poolId, user.id, 20), 'a later step, however far');
    t.is((await s.totp.find(poolId, user.id))?.lastUsedStep, 20);

    await s.totp.set(poolId, user.id, 'sealed:y', 30);
    t.false(await s.totp.recordUse(poolId, user.id, 30), 'the step that confirmed the enrolment is spent');
    t.true(await s.totp.recordUse(poolId, user.id, 31));
  });

  test(`${name}: of 8 concurrent uses of one TOTP step exactly one is recorded`, async (t) => {
    const s = await store();
    const user = await newUser();
    await s.totp.set(user.poolId, user.id, 'sealed:x', 41);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => s.totp.recordUse(user.poolId, user.id, 42)),
    );
    t.is(results.filter(Boolean).length, 1);
    t.is((await s.totp.find(user.poolId, user.id))?.lastUsedStep, 42);
  });

  test(`${name}: a TOTP is deleted once, and acting on one user's leaves other users and pools untouched`, async (t) => {
    const s = await store();
    const user = await newUser();
    const { poolId } = user;
    const neighbour = await newUser(poolId);
    const elsewhere = await newUser(unique('pool'), user.email);
    await s.totp.set(poolId, user.id, 'sealed:user', 5);
    await s.totp.set(poolId, neighbour.id, 'sealed:neighbour', 5);
    await s.totp.set(elsewhere.poolId, elsewhere.id, 'sealed:elsewhere', 5);

    t.false(await s.totp.recordUse(unique('pool'), user.id, 6), "another pool's id matches nothing");
    t.false(await s.totp.delete(unique('pool'), user.id));
    t.true(await s.totp.recordUse(poolId, user.id, 6));
    t.true(await s.totp.set(poolId, user.id, 'sealed:user-again', 7));
    t.true(await s.totp.delete(poolId, user.id));
    t.is(await s.totp.find(poolId, user.id), undefined);
    t.false(await s.totp.delete(poolId, user.id), 'already gone');
    t.false(await s.totp.recordUse(poolId, user.id, 8), 'gone: no use recorded');

    t.like(await s.totp.find(poolId, neighbour.id), { sealedSecret: 'sealed:neighbour', lastUsedStep: 5 });
    t.like(await s.totp.find(elsewhere.poolId, elsewhere.id), {
      sealedSecret: 'sealed:elsewhere',
      lastUsedStep: 5,
    });
  });

  test(`${name}: a malformed user id finds no TOTP and changes nothing, without a database error`, async (t) => {
    const s = await store();
    const user = await newUser();
    await s.totp.set(user.poolId, user.id, 'sealed:x', 3);
    t.is(await s.totp.find(user.poolId, 'not-a-uuid'), undefined);
    t.false(await s.totp.set(user.poolId, 'not-a-uuid', 'sealed:y', null));
    t.false(await s.totp.recordUse(user.poolId, 'not-a-uuid', 4));
    t.false(await s.totp.delete(user.poolId, 'not-a-uuid'));
    t.like(await s.totp.find(user.poolId, user.id), { sealedSecret: 'sealed:x', lastUsedStep: 3 });
  });

  test(`${name}: audit events are appended and listed newest first, filtered by user and event`, async (t) => {
    const s = await store();
    const user = await newUser();
    const poolId = user.poolId;
    await s.auditEvents.append({ poolId, event: 'sign_in', outcome: 'failure', ip: '192.0.2.1' });
    await s.auditEvents.append({
      poolId,
      event: 'sign_in',
      outcome: 'success',
      userId: user.id,
      credentialId: 'cred-1',
      ip: '2001:db8::1',
      userAgent: 'Mozilla/5.0',
      detail: { amr: ['hwk', 'user'], uv: true },
    });
    await s.auditEvents.append({ poolId, event: 'passkey_added', outcome: 'success', userId: user.id });
    await s.auditEvents.append({ poolId: unique('pool'), event: 'sign_in', outcome: 'success' });

    const all = await s.auditEvents.list(poolId);
    t.deepEqual(
      all.map((event) => event.event),
      ['passkey_added', 'sign_in', 'sign_in'],
    );
    const [, signIn] = all;
    t.is(typeof signIn?.id, 'number');
    t.true(signIn?.occurredAt instanceof Date);
    t.deepEqual(signIn, {
      id: signIn!.id,
      occurredAt: signIn!.occurredAt,
      poolId,
      event: 'sign_in',
      outcome: 'success',
      userId: user.id,
      credentialId: 'cred-1',
      ip: '2001:db8::1',
      userAgent: 'Mozilla/5.0',
      detail: { amr: ['hwk', 'user'], uv: true },
    });
    t.like(all[2], { userId: null, credentialId: null, userAgent: null, detail: null, ip: '192.0.2.1' });
    t.is((await s.auditEvents.list(poolId, { userId: user.id })).length, 2);
    t.is((await s.auditEvents.list(poolId, { event: 'sign_in' })).length, 2);
    t.is((await s.auditEvents.list(poolId, { userId: user.id, event: 'sign_in' })).length, 1);
    t.deepEqual(
      (await s.auditEvents.list(poolId, { limit: 1 })).map((event) => event.event),
      ['passkey_added'],
    );
  });

  test(`${name}: audit events before an id are the older ones, newest first: a cursor for paging back`, async (t) => {
    const s = await store();
    const user = await newUser();
    const poolId = user.poolId;
    for (const [event, userId] of [
      ['sign_in', user.id],
      ['sign_in', null],
      ['passkey_added', user.id],
      ['sign_in', user.id],
      ['passkey_removed', user.id],
    ] as const) {
      await s.auditEvents.append({ poolId, event, outcome: 'success', userId });
    }
    await s.auditEvents.append({ poolId: unique('pool'), event: 'sign_in', outcome: 'success' });
    const all = await s.auditEvents.list(poolId);
    const ids = all.map((event) => event.id);
    t.deepEqual(
      all.map((event) => event.event),
      ['passkey_removed', 'sign_in', 'passkey_added', 'sign_in', 'sign_in'],
    );

    t.deepEqual(await s.auditEvents.list(poolId, { before: ids[1]! }), all.slice(2));
    const firstPage = await s.auditEvents.list(poolId, { limit: 2 });
    const secondPage = await s.auditEvents.list(poolId, { limit: 2, before: firstPage.at(-1)!.id });
    const thirdPage = await s.auditEvents.list(poolId, { limit: 2, before: secondPage.at(-1)!.id });
    t.deepEqual([...firstPage, ...secondPage, ...thirdPage], all, 'pages of two cover every event once');
    t.is(thirdPage.length, 1);
    t.deepEqual(await s.auditEvents.list(poolId, { before: ids.at(-1)! }), [], 'nothing before the oldest');
    t.deepEqual(
      (await s.auditEvents.list(poolId, { userId: user.id, before: ids[0]! })).map((event) => event.event),
      ['sign_in', 'passkey_added', 'sign_in'],
      'with the other filters',
    );
    t.deepEqual(
      (await s.auditEvents.list(poolId, { event: 'sign_in', before: ids[1]!, limit: 1 })).map(
        (event) => event.id,
      ),
      [ids[3]],
    );
    t.deepEqual(await s.auditEvents.list(poolId, { before: 0 }), []);
    t.deepEqual(await s.auditEvents.list(poolId, { before: Number.NaN }), []);
    t.deepEqual(
      await s.auditEvents.list(poolId, { before: ids[1]! + 0.5 }),
      all.slice(1),
      'a fraction rounds up',
    );
    t.deepEqual(await s.auditEvents.list(poolId, { before: Number.MAX_VALUE }), all, 'beyond every id');
  });

  test(`${name}: a request's audit events are appended together, in their order; none is a no-op`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    await s.auditEvents.appendMany([]);
    await s.auditEvents.appendMany([
      { poolId, event: 'sign_in', outcome: 'failure', detail: { reason: 'first' } },
      { poolId, event: 'rate_limited', outcome: 'failure', ip: '192.0.2.7' },
      { poolId, event: 'sign_in', outcome: 'success', detail: { reason: 'third' } },
    ]);
    t.deepEqual(
      (await s.auditEvents.list(poolId)).map((event) => [event.event, event.detail?.reason ?? event.ip]),
      [
        ['sign_in', 'third'],
        ['rate_limited', '192.0.2.7'],
        ['sign_in', 'first'],
      ],
    );
  });

  test(`${name}: an audit event quoting what PostgreSQL cannot store (a lone surrogate, U+0000) is stored with U+FFFD`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const hostile = 'origin "https://evil\ud800.example\u0000"';
    await s.auditEvents.append({
      poolId,
      event: 'sign_in',
      outcome: 'failure',
      credentialId: 'cred\udc00',
      userAgent: 'agent\ud800\u0000',
      detail: { reason: hostile, nested: [{ 'key\ud800': 'value\u0000' }], pair: '😀' },
    });
    const [stored] = await s.auditEvents.list(poolId);
    t.like(stored, {
      credentialId: 'cred\ufffd',
      userAgent: 'agent\ufffd\ufffd',
      detail: {
        reason: 'origin "https://evil\ufffd.example\ufffd"',
        nested: [{ 'key\ufffd': 'value\ufffd' }],
        pair: '😀',
      },
    });
  });

  // ------------------------------------------------------------- organizations

  const newOrganization = async (poolId = unique('pool'), overrides: Partial<NewOrganization> = {}) =>
    (await store()).organizations.create({ poolId, slug: unique('org'), name: 'Acme Inc.', ...overrides });

  const NIL_UUID = '00000000-0000-0000-0000-000000000000';

  test(`${name}: organizations are created with their defaults and the same JS types on every backend`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const plain = await s.organizations.create({ poolId, slug: 'acme', name: 'Acme' });
    t.regex(plain.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    t.like(plain, {
      poolId,
      slug: 'acme',
      name: 'Acme',
      passkeyLogin: true,
      requireMfa: false,
      allowedFirstFactors: null,
    });
    t.true(plain.createdAt instanceof Date);
    t.true(plain.updatedAt instanceof Date);
    const strict = await s.organizations.create({
      poolId,
      slug: 'globex',
      name: 'Globex',
      passkeyLogin: false,
      requireMfa: true,
      allowedFirstFactors: ['email_otp', 'password'],
    });
    t.like(strict, { passkeyLogin: false, requireMfa: true });
    t.deepEqual(strict.allowedFirstFactors, ['email_otp', 'password'], 'a JS array, in its order');
    t.deepEqual(await s.organizations.find(poolId, strict.id), strict, 'the same when read back');
  });

  test(`${name}: organizations are found by id or slug, within their pool`, async (t) => {
    const s = await store();
    const organization = await newOrganization();
    const { poolId } = organization;
    t.deepEqual(await s.organizations.find(poolId, organization.id), organization);
    t.deepEqual(await s.organizations.find(poolId, organization.slug), organization);
    t.deepEqual(await s.organizations.find(poolId, organization.id.toUpperCase()), organization);
    t.is(await s.organizations.find(unique('pool'), organization.id), undefined);
    t.is(await s.organizations.find(unique('pool'), organization.slug), undefined);
    t.is(await s.organizations.find(poolId, NIL_UUID), undefined);
    t.is(await s.organizations.find(poolId, 'no-such-org'), undefined);
  });

  test(`${name}: a slug is unique per pool (UniqueViolationError), on create and update, and free in another pool`, async (t) => {
    const s = await store();
    const first = await newOrganization(unique('pool'), { slug: 'taken' });
    const error = await t.throwsAsync(newOrganization(first.poolId, { slug: 'taken' }), {
      instanceOf: UniqueViolationError,
    });
    t.is(error?.constraint, 'organizations_pool_id_slug_unique');
    const second = await newOrganization(first.poolId, { slug: 'free' });
    await t.throwsAsync(s.organizations.update(first.poolId, second.id, { slug: 'taken' }), {
      instanceOf: UniqueViolationError,
    });
    t.like(await s.organizations.find(first.poolId, second.id), { slug: 'free' }, 'nothing changed');
    t.truthy(await newOrganization(unique('pool'), { slug: 'taken' }));
  });

  test(`${name}: organizations are listed by id ascending, a page at a time after an exclusive cursor, within their pool`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const created = await Promise.all(Array.from({ length: 5 }, () => newOrganization(poolId)));
    await newOrganization();
    const sorted = [...created].sort((a, b) => (a.id < b.id ? -1 : 1));
    const ids = sorted.map((organization) => organization.id);
    t.deepEqual(await s.organizations.list(poolId, { limit: 10 }), sorted);
    t.deepEqual(
      (await s.organizations.list(poolId, { limit: 2 })).map((organization) => organization.id),
      ids.slice(0, 2),
    );
    t.deepEqual(
      (await s.organizations.list(poolId, { after: ids[1]!, limit: 2 })).map(
        (organization) => organization.id,
      ),
      ids.slice(2, 4),
    );
    t.deepEqual(
      (await s.organizations.list(poolId, { after: ids[3]!, limit: 2 })).map(
        (organization) => organization.id,
      ),
      ids.slice(4),
    );
    t.deepEqual(await s.organizations.list(poolId, { after: ids[4]!, limit: 2 }), []);
    t.deepEqual(await s.organizations.list(poolId, { after: 'not-a-uuid', limit: 10 }), []);
    t.deepEqual(await s.organizations.list(poolId, { limit: 0 }), []);
    t.deepEqual(await s.organizations.list(unique('pool'), { limit: 10 }), []);
  });

  test(`${name}: update applies only the given changes, moves updatedAt, and finds nothing elsewhere`, async (t) => {
    const s = await store();
    const organization = await newOrganization(unique('pool'), { allowedFirstFactors: ['passkey'] });
    const { poolId, id } = organization;
    await sleep(5);
    const renamed = await s.organizations.update(poolId, id, { name: 'Acme Corporation', requireMfa: true });
    t.like(renamed, {
      id,
      slug: organization.slug,
      name: 'Acme Corporation',
      passkeyLogin: true,
      requireMfa: true,
      allowedFirstFactors: ['passkey'],
      createdAt: organization.createdAt,
    });
    t.true(renamed!.updatedAt > organization.updatedAt);
    const opened = await s.organizations.update(poolId, id, {
      allowedFirstFactors: null,
      passkeyLogin: false,
    });
    t.like(opened, { allowedFirstFactors: null, passkeyLogin: false, name: 'Acme Corporation' });
    t.deepEqual(await s.organizations.find(poolId, id), opened);
    t.is(await s.organizations.update(unique('pool'), id, { name: 'Stolen' }), undefined);
    t.is(await s.organizations.update(poolId, NIL_UUID, { name: 'Nobody' }), undefined);
    t.is(await s.organizations.update(poolId, organization.slug, { name: 'By slug' }), undefined, 'ids only');
    t.like(await s.organizations.find(poolId, id), { name: 'Acme Corporation' });
  });

  test(`${name}: addMember adds a user of the pool once, and finds no other pool's user or organization`, async (t) => {
    const s = await store();
    const organization = await newOrganization();
    const { poolId, id } = organization;
    const user = await newUser(poolId);
    t.is(await s.organizations.addMember(poolId, id, user.id), 'added');
    t.is(await s.organizations.addMember(poolId, id, user.id), 'already');
    const stranger = await newUser(unique('pool'));
    t.is(await s.organizations.addMember(poolId, id, stranger.id), 'not_found', "another pool's user");
    t.is(
      await s.organizations.addMember(stranger.poolId, id, stranger.id),
      'not_found',
      "another pool's organization",
    );
    t.is(await s.organizations.addMember(poolId, NIL_UUID, user.id), 'not_found');
    t.is(await s.organizations.addMember(poolId, id, NIL_UUID), 'not_found');
    t.is(await s.organizations.addMember(poolId, 'not-a-uuid', user.id), 'not_found');
    t.is(await s.organizations.addMember(poolId, id, 'not-a-uuid'), 'not_found');
    const members = await s.organizations.listMembers(poolId, id, { limit: 10 });
    t.is(members.length, 1);
    t.like(members[0], { userId: user.id, email: user.email });
    t.true(members[0]!.addedAt instanceof Date);
  });

  test(`${name}: of 5 concurrent adds of one member exactly one adds`, async (t) => {
    const s = await store();
    const organization = await newOrganization();
    const user = await newUser(organization.poolId);
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () =>
        s.organizations.addMember(organization.poolId, organization.id, user.id),
      ),
    );
    t.deepEqual([...outcomes].sort(), ['added', 'already', 'already', 'already', 'already']);
    t.is((await s.organizations.listMembers(organization.poolId, organization.id, { limit: 10 })).length, 1);
  });

  test(`${name}: removeMember removes a member once, and only in their pool`, async (t) => {
    const s = await store();
    const organization = await newOrganization();
    const { poolId, id } = organization;
    const [user, other] = [await newUser(poolId), await newUser(poolId)];
    await s.organizations.addMember(poolId, id, user.id);
    await s.organizations.addMember(poolId, id, other.id);
    t.false(await s.organizations.removeMember(unique('pool'), id, user.id));
    t.false(await s.organizations.removeMember(poolId, 'not-a-uuid', user.id));
    t.false(await s.organizations.removeMember(poolId, id, 'not-a-uuid'));
    t.true(await s.organizations.removeMember(poolId, id, user.id));
    t.false(await s.organizations.removeMember(poolId, id, user.id), 'already removed');
    t.deepEqual(
      (await s.organizations.listMembers(poolId, id, { limit: 10 })).map((member) => member.userId),
      [other.id],
    );
    t.truthy(await s.users.findById(poolId, user.id), 'the user stays');
  });

  test(`${name}: members are listed by user id ascending, a page at a time after an exclusive cursor`, async (t) => {
    const s = await store();
    const organization = await newOrganization();
    const { poolId, id } = organization;
    const users = await Promise.all(Array.from({ length: 5 }, () => newUser(poolId)));
    for (const user of users) await s.organizations.addMember(poolId, id, user.id);
    await newUser(poolId); // not a member
    const elsewhere = await newOrganization(poolId);
    await s.organizations.addMember(poolId, elsewhere.id, users[0]!.id);
    const ids = users.map((user) => user.id).sort();
    const page = (after: string | undefined, limit: number) =>
      s.organizations
        .listMembers(poolId, id, { ...(after === undefined ? {} : { after }), limit })
        .then((members) => members.map((member) => member.userId));
    t.deepEqual(await page(undefined, 10), ids);
    t.deepEqual(await page(undefined, 2), ids.slice(0, 2));
    t.deepEqual(await page(ids[1], 2), ids.slice(2, 4));
    t.deepEqual(await page(ids[3], 2), ids.slice(4));
    t.deepEqual(await page(ids[4], 2), []);
    t.deepEqual(await page('not-a-uuid', 10), []);
    t.deepEqual(await page(undefined, 0), []);
    t.deepEqual(await s.organizations.listMembers(unique('pool'), id, { limit: 10 }), []);
    t.deepEqual(await s.organizations.listMembers(poolId, 'not-a-uuid', { limit: 10 }), []);
  });

  test(`${name}: an account lists its organizations by slug, read with it (findAccount, findWithOwner) and alone (listForUser)`, async (t) => {
    const s = await store();
    const poolId = unique('pool');
    const user = await newUser(poolId);
    const zeta = await newOrganization(poolId, { slug: 'zeta', allowedFirstFactors: ['email_otp'] });
    const alpha = await newOrganization(poolId, { slug: 'alpha', passkeyLogin: false, requireMfa: true });
    await newOrganization(poolId, { slug: 'middle' }); // not theirs
    await s.organizations.addMember(poolId, zeta.id, user.id);
    await s.organizations.addMember(poolId, alpha.id, user.id);
    const account = await s.users.findAccount(poolId, user.id);
    t.deepEqual(account?.organizations, [alpha, zeta], 'whole organizations, the same JS types as find');
    const passkey = await s.passkeys.create({ ...newPasskey(), poolId, userId: user.id });
    t.deepEqual((await s.passkeys.findWithOwner(poolId, passkey.credentialId))?.owner.organizations, [
      alpha,
      zeta,
    ]);
    t.deepEqual(await s.organizations.listForUser(poolId, user.id), [alpha, zeta], 'the same, on its own');
    await s.organizations.removeMember(poolId, zeta.id, user.id);
    t.deepEqual((await s.users.findAccount(poolId, user.id))?.organizations, [alpha]);
    t.deepEqual(await s.organizations.listForUser(poolId, user.id), [alpha]);
    t.deepEqual(await s.organizations.listForUser(unique('pool'), user.id), [], 'not in another pool');
    t.deepEqual(await s.organizations.listForUser(poolId, 'not-a-uuid'), []);
  });

  test(`${name}: deleting an organization removes its memberships and grant records, and keeps the users`, async (t) => {
    const s = await store();
    const organization = await newOrganization();
    const { poolId, id } = organization;
    const kept = await newOrganization(poolId);
    const user = await newUser(poolId);
    await s.organizations.addMember(poolId, id, user.id);
    await s.organizations.addMember(poolId, kept.id, user.id);
    const models = s.oidcModels(poolId);
    await models.upsert('Grant', 'grant-of-deleted', { accountId: user.id }, 3600);
    await models.upsert('Grant', 'grant-of-kept', { accountId: user.id }, 3600);
    await s.organizations.setGrantOrganization(poolId, 'grant-of-deleted', {
      organizationId: id,
      userId: user.id,
    });
    await s.organizations.setGrantOrganization(poolId, 'grant-of-kept', {
      organizationId: kept.id,
      userId: user.id,
    });

    t.false(await s.organizations.delete(unique('pool'), id), "another pool's");
    t.false(await s.organizations.delete(poolId, 'not-a-uuid'));
    t.false(await s.organizations.delete(poolId, NIL_UUID));
    t.true(await s.organizations.delete(poolId, id));
    t.false(await s.organizations.delete(poolId, id), 'already gone');

    t.is(await s.organizations.find(poolId, id), undefined);
    t.deepEqual(await s.organizations.listMembers(poolId, id, { limit: 10 }), []);
    t.is(await s.organizations.organizationOfGrant(poolId, 'grant-of-deleted'), undefined);
    t.deepEqual(await s.organizations.organizationOfGrant(poolId, 'grant-of-kept'), kept);
    t.truthy(await models.find('Grant', 'grant-of-deleted'), 'the grant itself is oidc-provider’s');
    t.deepEqual((await s.users.findAccount(poolId, user.id))?.organizations, [kept]);
    t.is(await s.organizations.addMember(poolId, id, user.id), 'not_found');
  });

  test(`${name}: deleting a user removes their memberships`, async (t) => {
    const s = await store();
    const organization = await newOrganization();
    const { poolId, id } = organization;
    const [gone, stays] = [await newUser(poolId), await newUser(poolId)];
    await s.organizations.addMember(poolId, id, gone.id);
    await s.organizations.addMember(poolId, id, stays.id);
    t.true(await s.users.delete(poolId, gone.id));
    t.deepEqual(
      (await s.organizations.listMembers(poolId, id, { limit: 10 })).map((member) => member.userId),
      [stays.id],
    );
    t.false(await s.organizations.removeMember(poolId, id, gone.id));
  });

  test(`${name}: a grant's organization is recorded for members only, replaced and forgotten, per pool`, async (t) => {
    const s = await store();
    const first = await newOrganization();
    const { poolId } = first;
    const second = await newOrganization(poolId);
    const user = await newUser(poolId);
    const outsider = await newUser(poolId);
    await s.organizations.addMember(poolId, first.id, user.id);
    await s.organizations.addMember(poolId, second.id, user.id);
    const of = (organizationId: string, userId = user.id) => ({ organizationId, userId });
    // Live grants: the sweep (another test's too) keeps a grant's record while the grant lives.
    const models = s.oidcModels(poolId);
    await models.upsert('Grant', 'grant-1', { accountId: user.id }, 3600);
    t.is(await s.organizations.organizationOfGrant(poolId, 'grant-1'), undefined);
    t.true(await s.organizations.setGrantOrganization(poolId, 'grant-1', of(first.id)));
    t.deepEqual(await s.organizations.organizationOfGrant(poolId, 'grant-1'), first);
    t.true(await s.organizations.setGrantOrganization(poolId, 'grant-1', of(second.id)));
    t.deepEqual(await s.organizations.organizationOfGrant(poolId, 'grant-1'), second, 'replaced');
    t.is(
      await s.organizations.organizationOfGrant(unique('pool'), 'grant-1'),
      undefined,
      "not another pool's",
    );
    // A non-member records nothing, and the grant keeps no earlier record (fails closed).
    t.false(await s.organizations.setGrantOrganization(poolId, 'grant-1', of(first.id, outsider.id)));
    t.is(await s.organizations.organizationOfGrant(poolId, 'grant-1'), undefined, 'not for a non-member');
    // Another pool's organization is never recorded for this pool's grant.
    const foreign = await newOrganization();
    t.false(await s.organizations.setGrantOrganization(poolId, 'grant-2', of(foreign.id)));
    t.is(
      await s.organizations.organizationOfGrant(poolId, 'grant-2'),
      undefined,
      "another pool's organization",
    );
    // A member removed takes the record along.
    t.true(await s.organizations.setGrantOrganization(poolId, 'grant-1', of(first.id)));
    t.true(await s.organizations.removeMember(poolId, first.id, user.id));
    t.is(await s.organizations.organizationOfGrant(poolId, 'grant-1'), undefined, 'gone with the membership');
    t.true(await s.organizations.setGrantOrganization(poolId, 'grant-1', of(second.id)));
    t.false(await s.organizations.setGrantOrganization(poolId, 'grant-1', null));
    t.is(await s.organizations.organizationOfGrant(poolId, 'grant-1'), undefined, 'forgotten');
    t.is(await s.organizations.organizationOfGrant(poolId, 'no-such-grant'), undefined);
  });

  // --------------------------------------------------------------- oidc models

  registerOidcModelConformance(test, name, async (poolId) => (await store()).oidcModels(poolId));

  // The only test that sweeps: a concurrent sweep would take this one's expired rows.
  test(`${name}: sweepExpired deletes expired oidc rows and keeps live ones, and the organization records of grants gone`, async (t) => {
    const s = await store();
    const organization = await newOrganization();
    const models = s.oidcModels(organization.poolId);
    await models.upsert('RefreshToken', 'expired-1', { grantId: 'g' }, 0.1);
    await models.upsert('RefreshToken', 'expired-2', { grantId: 'g' }, 0.1);
    await models.upsert('RefreshToken', 'live', { grantId: 'g' }, 60);
    const user = await newUser(organization.poolId);
    await s.organizations.addMember(organization.poolId, organization.id, user.id);
    await models.upsert('Grant', 'g', { accountId: user.id }, undefined);
    await models.upsert('Grant', 'expiring', { accountId: user.id }, 0.1);
    const membership = { organizationId: organization.id, userId: user.id };
    await s.organizations.setGrantOrganization(organization.poolId, 'g', membership);
    await s.organizations.setGrantOrganization(organization.poolId, 'expiring', membership);
    t.is(await s.sweepExpired(new Date(0)), 0, 'nothing had expired by then');
    await sleep(300);
    t.true((await s.sweepExpired()) >= 3, 'other tests may have expired rows too');
    t.truthy(await models.find('RefreshToken', 'live'));
    t.truthy(await models.find('Grant', 'g'));
    t.deepEqual(await s.organizations.organizationOfGrant(organization.poolId, 'g'), organization);
    t.is(await s.organizations.organizationOfGrant(organization.poolId, 'expiring'), undefined);
  });

  test(`${name}: a refresh token rotates once: the spent one consumed and its successor stored together, or neither`, async (t) => {
    const s = await store();
    const poolId = `rotation-${Math.random().toString(36).slice(2)}`;
    const models = s.oidcModels(poolId);
    await models.upsert('RefreshToken', 'rt-1', { grantId: 'g', accountId: 'a' }, 60);
    const rotation = (successorId: string) => ({
      spentId: 'rt-1',
      successorId,
      successor: { grantId: 'g', accountId: 'a', rotations: 1 },
      expiresInSeconds: 60,
    });
    const outcomes = await Promise.all([
      s.rotateRefreshToken(poolId, rotation('rt-2a')),
      s.rotateRefreshToken(poolId, rotation('rt-2b')),
    ]);
    t.deepEqual(outcomes.toSorted(), [false, true], 'one of two concurrent rotations wins');
    const winner = outcomes[0] ? 'rt-2a' : 'rt-2b';
    const loser = outcomes[0] ? 'rt-2b' : 'rt-2a';
    t.like(await models.find('RefreshToken', winner), { grantId: 'g', rotations: 1 });
    t.is((await models.find('RefreshToken', winner))?.consumed, undefined, 'the successor is live');
    t.is(await models.find('RefreshToken', loser), undefined, 'the loser stored nothing');
    t.is(typeof (await models.find('RefreshToken', 'rt-1'))?.consumed, 'number', 'the spent one is consumed');

    // Expired or unknown: nothing stored.
    await models.upsert('RefreshToken', 'old', { grantId: 'g' }, 0.05);
    await sleep(150);
    t.false(await s.rotateRefreshToken(poolId, { ...rotation('rt-3'), spentId: 'old' }));
    t.false(await s.rotateRefreshToken(poolId, { ...rotation('rt-4'), spentId: 'nope' }));
    t.is(await models.find('RefreshToken', 'rt-3'), undefined);
    t.is(await models.find('RefreshToken', 'rt-4'), undefined);
  });
}
