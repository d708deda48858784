/**
 * The OidcModelStore conformance suite: what oidc-provider's adapter relies on,
 * checked on every backend that stores its models (the durable store for
 * Grant/RefreshToken, the ephemeral stores for everything short-lived).
 *
 * Every test uses its own pool id, so tests can share one store and run
 * concurrently.
 */
import { randomBytes } from 'node:crypto';
import type { TestFn } from 'ava';
import type { OidcModelStore, OidcPayload, StoredOidcArtifact } from '../../src/storage/types.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A fractional TTL short enough to wait out, long enough that the "still
 * there" checks made right after writing hold on a loaded machine (the
 * durable store measures it by the database clock, behind a busy pool).
 */
const SHORT_TTL_SECONDS = 0.8;
const PAST_SHORT_TTL_MS = 1_100;
const unique = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

/**
 * Registers the suite. `modelsFor(poolId)` returns the store's models of a pool
 * (opening the store on first use).
 */
export function registerOidcModelConformance(
  test: TestFn,
  name: string,
  modelsFor: (poolId: string) => Promise<OidcModelStore>,
): void {
  const fresh = () => modelsFor(unique('pool'));

  test(`${name}: oidc upsert then find returns the same payload`, async (t) => {
    const models = await fresh();
    const payload: OidcPayload = {
      accountId: 'account-1',
      grantId: unique('grant'),
      kind: 'AccessToken',
      scope: 'openid email',
      claims: { id_token: { email: null }, nested: [1, 'two', { three: true }] },
      exp: 1_900_000_000,
      text: 'ünïcödé ✓',
    };
    await models.upsert('AccessToken', 'at-1', payload, 60);
    t.deepEqual(await models.find('AccessToken', 'at-1'), payload);
  });

  test(`${name}: oidc find of an unknown id is undefined`, async (t) => {
    const models = await fresh();
    t.is(await models.find('AccessToken', 'missing'), undefined);
    t.is(await models.findByUid('Session', 'missing'), undefined);
    t.is(await models.findByUserCode('DeviceCode', 'missing'), undefined);
  });

  test(`${name}: oidc upsert replaces the payload of an existing id`, async (t) => {
    const models = await fresh();
    await models.upsert('Interaction', 'i-1', { step: 1, extra: 'gone' }, 60);
    await models.upsert('Interaction', 'i-1', { step: 2 }, 60);
    t.deepEqual(await models.find('Interaction', 'i-1'), { step: 2 });
  });

  test(`${name}: oidc artifacts without an expiry are kept`, async (t) => {
    const models = await fresh();
    await models.upsert('Grant', 'g-1', { accountId: 'a' }, undefined);
    await sleep(50);
    t.deepEqual(await models.find('Grant', 'g-1'), { accountId: 'a' });
  });

  test(`${name}: oidc find after expiry is undefined, indexes included`, async (t) => {
    const models = await fresh();
    // The long-lived record proves the lookups work after the wait, without a
    // "still there right after writing" check that a loaded machine can outrun.
    await models.upsert('Session', 's-kept', { uid: 'u-kept', accountId: 'a' }, 60);
    await models.upsert('Session', 's-1', { uid: 'u-1', accountId: 'a' }, SHORT_TTL_SECONDS);
    await models.upsert('DeviceCode', 'd-1', { userCode: 'ABCD-EFGH' }, SHORT_TTL_SECONDS);
    await sleep(PAST_SHORT_TTL_MS);
    t.truthy(await models.findByUid('Session', 'u-kept'));
    t.deepEqual(
      (await models.listByAccountId('Session', 'a')).map((found) => found.id),
      ['s-kept'],
      'the account lists live sessions only',
    );
    t.is(await models.find('Session', 's-1'), undefined);
    t.is(await models.findByUid('Session', 'u-1'), undefined);
    t.is(await models.findByUserCode('DeviceCode', 'ABCD-EFGH'), undefined);
    t.false(await models.consume('Session', 's-1'));
  });

  test(`${name}: oidc findByUid finds the session of that uid`, async (t) => {
    const models = await fresh();
    const payload = { uid: 'uid-1', accountId: 'account-1', loginTs: 1_700_000_000 };
    await models.upsert('Session', 'session-1', payload, 60);
    await models.upsert('Session', 'session-2', { uid: 'uid-2' }, 60);
    t.deepEqual(await models.findByUid('Session', 'uid-1'), payload);
    t.is(await models.findByUid('Interaction', 'uid-1'), undefined, 'the lookup is per model');
  });

  test(`${name}: oidc findByUid follows a re-upsert that changes the uid`, async (t) => {
    const models = await fresh();
    await models.upsert('Session', 'session-1', { uid: 'old-uid' }, 60);
    await models.upsert('Session', 'session-1', { uid: 'new-uid' }, 60);
    t.is(await models.findByUid('Session', 'old-uid'), undefined);
    t.deepEqual(await models.findByUid('Session', 'new-uid'), { uid: 'new-uid' });
  });

  test(`${name}: oidc findByUserCode finds the device code of that user code`, async (t) => {
    const models = await fresh();
    const payload = { userCode: 'WDJB-MJHT', clientId: 'tv', grantId: unique('grant') };
    await models.upsert('DeviceCode', 'dc-1', payload, 60);
    t.deepEqual(await models.findByUserCode('DeviceCode', 'WDJB-MJHT'), payload);
  });

  test(`${name}: oidc consume succeeds for exactly one of 10 concurrent callers`, async (t) => {
    const models = await fresh();
    await models.upsert('AuthorizationCode', 'code-1', { grantId: 'g', accountId: 'a' }, 60);
    const before = Math.floor(Date.now() / 1000);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => models.consume('AuthorizationCode', 'code-1')),
    );
    t.is(results.filter(Boolean).length, 1);
    const found = await models.find('AuthorizationCode', 'code-1');
    t.is(typeof found?.consumed, 'number');
    t.true(Math.abs((found?.consumed ?? 0) - before) <= 5, 'consumed is epoch seconds, now');
    t.is(found?.grantId, 'g');
    t.false(await models.consume('AuthorizationCode', 'code-1'), 'a later consume fails too');
  });

  test(`${name}: oidc consume of a missing id is false`, async (t) => {
    const models = await fresh();
    t.false(await models.consume('AuthorizationCode', 'never-stored'));
    t.is(await models.find('AuthorizationCode', 'never-stored'), undefined, 'consume does not create it');
  });

  test(`${name}: oidc consumed mark survives a re-upsert`, async (t) => {
    const models = await fresh();
    await models.upsert('RefreshToken', 'rt-1', { grantId: 'g' }, 60);
    t.true(await models.consume('RefreshToken', 'rt-1'));
    await models.upsert('RefreshToken', 'rt-1', { grantId: 'g', rotated: true }, 60);
    const found = await models.find('RefreshToken', 'rt-1');
    t.is(found?.rotated, true);
    t.is(typeof found?.consumed, 'number');
    t.false(await models.consume('RefreshToken', 'rt-1'));
  });

  test(`${name}: oidc destroy removes the artifact and its indexes`, async (t) => {
    const models = await fresh();
    await models.upsert('Session', 's-1', { uid: 'u-1' }, 60);
    await models.upsert('DeviceCode', 'd-1', { userCode: 'CODE-1' }, 60);
    await models.destroy('Session', 's-1');
    await models.destroy('DeviceCode', 'd-1');
    t.is(await models.find('Session', 's-1'), undefined);
    t.is(await models.findByUid('Session', 'u-1'), undefined);
    t.is(await models.find('DeviceCode', 'd-1'), undefined);
    t.is(await models.findByUserCode('DeviceCode', 'CODE-1'), undefined);
    await t.notThrowsAsync(() => models.destroy('Session', 's-1'), 'destroying twice is harmless');
  });

  test(`${name}: oidc destroy keeps a uid index that now points at another artifact`, async (t) => {
    const models = await fresh();
    await models.upsert('Session', 'old-session', { uid: 'shared-uid', n: 1 }, 60);
    await models.upsert('Session', 'new-session', { uid: 'shared-uid', n: 2 }, 60);
    await models.destroy('Session', 'old-session');
    t.deepEqual(await models.findByUid('Session', 'shared-uid'), { uid: 'shared-uid', n: 2 });
  });

  test(`${name}: oidc revokeByGrantId removes that model's artifacts of that grant only`, async (t) => {
    const models = await fresh();
    const [g1, g2] = [unique('grant'), unique('grant')];
    await models.upsert('AccessToken', 'at-1', { grantId: g1 }, 60);
    await models.upsert('AccessToken', 'at-2', { grantId: g1 }, 60);
    await models.upsert('AccessToken', 'at-3', { grantId: g2 }, 60);
    await models.upsert('RefreshToken', 'rt-1', { grantId: g1 }, 60);
    await models.upsert('AccessToken', 'at-4', { accountId: 'no grant' }, 60);

    await models.revokeByGrantId('AccessToken', g1);
    t.is(await models.find('AccessToken', 'at-1'), undefined);
    t.is(await models.find('AccessToken', 'at-2'), undefined);
    t.deepEqual(await models.find('AccessToken', 'at-3'), { grantId: g2 }, 'other grant kept');
    t.deepEqual(await models.find('RefreshToken', 'rt-1'), { grantId: g1 }, 'other model kept');
    t.truthy(await models.find('AccessToken', 'at-4'));

    await models.revokeByGrantId('RefreshToken', g1);
    t.is(await models.find('RefreshToken', 'rt-1'), undefined);
  });

  test(`${name}: oidc revokeByGrantId reaches artifacts outliving the first one of the grant`, async (t) => {
    const models = await fresh();
    const grantId = unique('grant');
    await models.upsert('AccessToken', 'short', { grantId }, SHORT_TTL_SECONDS);
    await models.upsert('AccessToken', 'long', { grantId }, 60);
    await sleep(PAST_SHORT_TTL_MS);
    await models.revokeByGrantId('AccessToken', grantId);
    t.is(await models.find('AccessToken', 'long'), undefined);
  });

  test(`${name}: oidc revokeByGrantId also drops the revoked artifacts' indexes`, async (t) => {
    const models = await fresh();
    const grantId = unique('grant');
    await models.upsert('DeviceCode', 'dc-1', { grantId, userCode: 'REVOKED-1' }, 60);
    await models.revokeByGrantId('DeviceCode', grantId);
    t.is(await models.findByUserCode('DeviceCode', 'REVOKED-1'), undefined);
  });

  const byId = (found: StoredOidcArtifact[]) => [...found].sort((a, b) => a.id.localeCompare(b.id));

  test(`${name}: oidc listByAccountId lists that model's artifacts of that account, with their ids`, async (t) => {
    const models = await fresh();
    const grantId = unique('grant');
    const first = { uid: 'u-1', accountId: 'ada', authorizations: { web: { grantId, sid: 'sid-1' } } };
    const second = { uid: 'u-2', accountId: 'ada' };
    await models.upsert('Session', 's-2', second, 60);
    await models.upsert('Session', 's-1', first, 60);
    await models.upsert('Session', 's-3', { uid: 'u-3', accountId: 'bob' }, 60);
    await models.upsert('Session', 's-4', { uid: 'u-4' }, 60);
    await models.upsert('AccessToken', 'at-1', { accountId: 'ada', grantId }, 60);
    await models.upsert('Grant', grantId, { accountId: 'ada', clientId: 'web' }, undefined);

    t.deepEqual(byId(await models.listByAccountId('Session', 'ada')), [
      { id: 's-1', payload: first },
      { id: 's-2', payload: second },
    ]);
    t.deepEqual(
      (await models.listByAccountId('Session', 'bob')).map((found) => found.id),
      ['s-3'],
    );
    t.deepEqual(await models.listByAccountId('Session', 'nobody'), []);
    t.deepEqual(await models.listByAccountId('Grant', 'ada'), [
      { id: grantId, payload: { accountId: 'ada', clientId: 'web' } },
    ]);
    t.deepEqual(
      (await models.listByAccountId('AccessToken', 'ada')).map((found) => found.id),
      ['at-1'],
      'per model',
    );
  });

  test(`${name}: oidc listByAccountId follows re-upserts, destroy and revocation`, async (t) => {
    const models = await fresh();
    const grantId = unique('grant');
    await models.upsert('Session', 's-1', { uid: 'u-1', accountId: 'ada' }, 60);
    await models.upsert('Session', 's-1', { uid: 'u-1', accountId: 'bob' }, 60);
    t.deepEqual(await models.listByAccountId('Session', 'ada'), [], 'the session changed hands');
    t.deepEqual(
      (await models.listByAccountId('Session', 'bob')).map((found) => found.id),
      ['s-1'],
    );
    await models.upsert('Session', 's-1', { uid: 'u-1' }, 60);
    t.deepEqual(await models.listByAccountId('Session', 'bob'), [], 'and then was signed out');

    await models.upsert('Session', 's-2', { uid: 'u-2', accountId: 'ada' }, 60);
    await models.destroy('Session', 's-2');
    await models.upsert('RefreshToken', 'rt-1', { accountId: 'ada', grantId }, 60);
    t.true(await models.consume('RefreshToken', 'rt-1'));
    const [consumed] = await models.listByAccountId('RefreshToken', 'ada');
    t.is(typeof consumed?.payload.consumed, 'number', 'a consumed mark shows as in find');
    await models.revokeByGrantId('RefreshToken', grantId);
    t.deepEqual(await models.listByAccountId('Session', 'ada'), []);
    t.deepEqual(await models.listByAccountId('RefreshToken', 'ada'), []);
  });

  test(`${name}: oidc pools are isolated`, async (t) => {
    const [a, b] = [await fresh(), await fresh()];
    const grantId = unique('grant');
    await a.upsert('AccessToken', 'same-id', { grantId, pool: 'a' }, 60);
    await b.upsert('AccessToken', 'same-id', { grantId, pool: 'b' }, 60);
    await a.upsert('Session', 'session', { uid: 'same-uid', pool: 'a' }, 60);
    t.is((await b.find('AccessToken', 'same-id'))?.pool, 'b');
    t.is(await b.findByUid('Session', 'same-uid'), undefined);

    t.true(await a.consume('AccessToken', 'same-id'));
    t.true(await b.consume('AccessToken', 'same-id'), 'consuming in one pool leaves the other');

    await a.revokeByGrantId('AccessToken', grantId);
    t.is(await a.find('AccessToken', 'same-id'), undefined);
    t.is((await b.find('AccessToken', 'same-id'))?.pool, 'b');

    await b.destroy('AccessToken', 'same-id');
    t.is((await a.find('Session', 'session'))?.pool, 'a');

    await a.upsert('Session', 'by-account', { accountId: 'same-account' }, 60);
    t.deepEqual(await b.listByAccountId('Session', 'same-account'), []);
    t.is((await a.listByAccountId('Session', 'same-account')).length, 1);
  });
}
