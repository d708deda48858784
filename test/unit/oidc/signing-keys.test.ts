import test from 'ava';
import {
  ensureSigningKeys,
  KEY_ACTIVATION_DELAY_SECONDS,
  keySetVersion,
  openSigningKeys,
  RETIRED_KEY_RETENTION_SECONDS,
  rotateSigningKeys,
} from '../../../src/oidc/signing-keys.ts';
import { createSecretBox } from '../../../src/secrets/secret-box.ts';
import type { SigningKeyRecord, SigningKeyRepository } from '../../../src/storage/types.ts';

/** An in-memory repository with the contract's semantics, enough to test key policy. */
function memoryRepository(): SigningKeyRepository & { records: SigningKeyRecord[] } {
  const records: SigningKeyRecord[] = [];
  return {
    records,
    async list(poolId) {
      return records
        .filter((r) => r.poolId === poolId)
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    },
    async add(poolId, keys, { onlyIfNone = false, retireReplacedAt } = {}) {
      if (onlyIfNone && records.some((r) => r.poolId === poolId)) return false;
      for (const record of records) {
        if (record.poolId === poolId && record.retiredAt === null && keys.some((k) => k.alg === record.alg)) {
          record.retiredAt = retireReplacedAt ?? keys[0]?.createdAt ?? new Date();
        }
      }
      records.push(...keys);
      return true;
    },
    async deleteRetiredBefore(poolId, before) {
      const gone = records.filter((r) => r.poolId === poolId && r.retiredAt && r.retiredAt < before);
      for (const record of gone) records.splice(records.indexOf(record), 1);
      return gone.length;
    },
  };
}

const box = createSecretBox('a-test-secret-that-is-at-least-32-characters', 'signing-key-encryption');

test('creates one ES256 and one RS256 key, stored encrypted, signing ES256 first', async (t) => {
  const repository = memoryRepository();
  await ensureSigningKeys(repository, 'demo', box);
  await ensureSigningKeys(repository, 'demo', box);
  t.is(repository.records.length, 2);
  t.false(repository.records.some((r) => r.encryptedJwk.includes('"d"')));
  const { keys } = openSigningKeys(await repository.list('demo'), box);
  t.deepEqual(keys.map((k) => k.alg).sort(), ['ES256', 'RS256']);
  t.true(keys.every((k) => typeof k.d === 'string' && k.use === 'sig' && k.kid));
});

test('a rotated key is published at once, signs after the activation delay, and the old one stays published', async (t) => {
  const repository = memoryRepository();
  const start = new Date('2026-01-01T00:00:00Z');
  await ensureSigningKeys(repository, 'demo', box, start);
  const before = openSigningKeys(await repository.list('demo'), box, start).keys.map((k) => k.kid);
  const rotatedAt = new Date(start.getTime() + 3600_000);
  const { kids: newKids, signsFrom } = await rotateSigningKeys(repository, 'demo', box, rotatedAt);
  t.is(signsFrom.getTime() - rotatedAt.getTime(), KEY_ACTIVATION_DELAY_SECONDS * 1000);
  const at = (ms: number) => openSigningKeys(repository.records, box, new Date(ms)).keys.map((k) => k.kid);
  const sorted = (kids: string[]) => [...kids].sort();

  // Published, not yet signing: oidc-provider signs with the first key of each algorithm.
  const published = at(rotatedAt.getTime());
  t.deepEqual(sorted(published.slice(0, 2)), sorted(before), 'the old keys still sign');
  t.deepEqual(sorted(published.slice(2)), sorted(newKids), 'the new keys are already published');
  t.not(
    keySetVersion(repository.records, rotatedAt),
    keySetVersion(repository.records, signsFrom),
    'servers rebuild when the time to switch comes',
  );

  const switched = at(signsFrom.getTime());
  t.deepEqual(sorted(switched.slice(0, 2)), sorted(newKids), 'the new keys sign');
  t.deepEqual(sorted(switched.slice(2)), sorted(before), 'the old keys stay published');

  const later = signsFrom.getTime() + (RETIRED_KEY_RETENTION_SECONDS + 1) * 1000;
  t.deepEqual(sorted(at(later)), sorted(newKids), 'until retention is over');
});

test('two rotations within a minute switch in order: each key signs only after the one before it', async (t) => {
  const repository = memoryRepository();
  const start = new Date('2026-01-01T00:00:00Z');
  await ensureSigningKeys(repository, 'demo', box, start);
  const original = openSigningKeys(repository.records, box, start).keys.map((k) => k.kid);
  const first = await rotateSigningKeys(repository, 'demo', box, new Date(start.getTime() + 1000));
  const second = await rotateSigningKeys(repository, 'demo', box, new Date(start.getTime() + 21_000));
  const signing = (ms: number) =>
    openSigningKeys(repository.records, box, new Date(start.getTime() + ms))
      .keys.slice(0, 2)
      .map((k) => k.kid)
      .sort();
  t.deepEqual(signing(30_000), [...original].sort());
  t.deepEqual(signing(first.signsFrom.getTime() - start.getTime()), [...first.kids].sort());
  t.deepEqual(signing(second.signsFrom.getTime() - start.getTime()), [...second.kids].sort());
});
