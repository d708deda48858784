/**
 * The backstop of issue 8, item 11 on real PostgreSQL: an oidc-provider
 * payload that jsonb cannot keep (U+0000, an unpaired surrogate, in a value
 * or a key) is refused by the repository as an error oidc-provider answers
 * as 400 invalid_request, and nothing is written; a surrogate pair is kept.
 */
import anyTest, { type TestFn } from 'ava';
import { UnstorablePayloadError } from '../../src/storage/postgres/oidc-model-repository.ts';
import { openDurableStore } from '../../src/storage/postgres/open-durable-store.ts';
import type { DurableStore } from '../../src/storage/types.ts';
import { createTestDatabase, probePostgres, serviceTest, type TestDatabase } from '../support/services.ts';

const test = serviceTest(
  anyTest as TestFn<{ database: TestDatabase; store: DurableStore }>,
  await probePostgres(),
);

test.before(async (t) => {
  const database = await createTestDatabase();
  t.context = { database, store: await openDurableStore({ url: database.url }) };
  await t.context.store.migrate();
});
test.after.always(async (t) => {
  await t.context.store?.close();
  await t.context.database?.drop();
});

const base = { accountId: 'account-1', grantId: 'grant-1', clientId: 'web', kind: 'RefreshToken' };

test('a payload with U+0000 or an unpaired surrogate is refused as a 400 invalid_request, writing nothing', async (t) => {
  const models = t.context.store.oidcModels('acme');
  const payloads: Array<[string, Record<string, unknown>]> = [
    ['U+0000 in a value', { ...base, nonce: 'a\u0000b' }],
    ['a lone surrogate in a value', { ...base, claims: { id_token: { email: { value: '\ud800' } } } }],
    [
      'a lone low surrogate in an array',
      { ...base, claims: { userinfo: { email: { values: ['x\udc00'] } } } },
    ],
    ['U+0000 in a key', { ...base, claims: { id_token: { 'a\u0000': null } } }],
    ['a lone surrogate in a key', { ...base, claims: { id_token: { '\ud800': null } } }],
  ];
  for (const [label, payload] of payloads) {
    const id = `token-${label.replaceAll(' ', '-')}`;
    const error = await t.throwsAsync(models.upsert('RefreshToken', id, payload as never, 60), {
      instanceOf: UnstorablePayloadError,
    });
    t.like(
      error,
      { statusCode: 400, expose: true, message: 'invalid_request', model: 'RefreshToken' },
      label,
    );
    t.is(typeof error?.error_description, 'string', label);
    t.is(await models.find('RefreshToken', id), undefined, `${label}: nothing written`);
  }
});

test('a payload with surrogate pairs and other control characters is kept as it was', async (t) => {
  const models = t.context.store.oidcModels('acme');
  const payload = {
    ...base,
    nonce: '😀 \ud83d\ude00 tab\t',
    claims: { id_token: { email: { value: '\u0001' } } },
  };
  await models.upsert('RefreshToken', 'token-fine', payload as never, 60);
  t.like(await models.find('RefreshToken', 'token-fine'), payload);
});
