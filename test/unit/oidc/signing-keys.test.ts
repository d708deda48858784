import test from 'ava';
import {
  ensureSigningKeys,
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
    async add(poolId, keys, { onlyIfNone = false } = {}) {
      if (onlyIfNone && records.some((r) => r.poolId === poolId)) return false;
      for (const record of records) {
        if (record.poolId === poolId && record.retiredAt === null && keys.some((k) => k.alg === record.alg)) {
          record.retiredAt = keys[0]?.createdAt ?? new Date();
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

test('after rotation the new key of each algorithm comes first and the old one stays published', async (t) => {
  const repository = memoryRepository();
  const start = new Date('2026-01-01T00:00:00Z');
  await ensureSigningKeys(repository, 'demo', box, start);
  const before = openSigningKeys(await repository.list('demo'), box, start).keys;
  const rotatedAt = new Date(start.getTime() + 3600_000);
  const newKids = await rotateSigningKeys(repository, 'demo', box, rotatedAt);

  const after = openSigningKeys(await repository.list('demo'), box, rotatedAt).keys;
  t.is(after.length, 4);
  t.deepEqual(
    after
      .slice(0, 2)
      .map((k) => k.kid)
      .sort(),
    [...newKids].sort(),
  );
  t.deepEqual(
    after
      .slice(2)
      .map((k) => k.kid)
      .sort(),
    before.map((k) => k.kid).sort(),
  );

  const later = new Date(rotatedAt.getTime() + (RETIRED_KEY_RETENTION_SECONDS + 1) * 1000);
  t.deepEqual(
    openSigningKeys(await repository.list('demo'), box, later)
      .keys.map((k) => k.kid)
      .sort(),
    [...newKids].sort(),
  );
});
