/**
 * Each pool's token signing keys: an ES256 key (the default, cheapest to
 * sign) and an RS256 key (for clients that need it), created on first start,
 * stored encrypted, and rotated by `postern keys rotate`.
 *
 * Rotation adds a new key per algorithm. It is published at once and signs
 * from KEY_ACTIVATION_DELAY later, when every server has re-read the keys and
 * publishes it too (so no JWKS behind the load balancer lacks a kid a token
 * carries); until then the key it replaces goes on signing. Replaced keys stay
 * published for RETIRED_KEY_RETENTION, longer than any token signed with them
 * can be valid (ID tokens live TTL.IdToken), so a relying party never meets a
 * signature it cannot verify.
 */
import { generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { SecretBox } from '../secrets/secret-box.ts';
import type { SigningAlgorithm, SigningKeyRecord, SigningKeyRepository } from '../storage/types.ts';
import { SIGNING_ALGORITHMS } from './signing-algorithms.ts';
import { TTL } from './ttl.ts';

/** A day: comfortably longer than an ID token (TTL.IdToken) plus clock skew. */
export const RETIRED_KEY_RETENTION_SECONDS = Math.max(24 * 3600, TTL.IdToken * 2);

/** How often running servers re-read their pools' keys (pools/pool-registry.ts). */
export const KEY_REFRESH_SECONDS = 30;

/**
 * From rotation to the new key signing: every server publishes it within one
 * refresh interval, a JWKS cached before that (for at most one interval, see
 * app.ts) expires within another, and a third is slack for clock skew.
 */
export const KEY_ACTIVATION_DELAY_SECONDS = 3 * KEY_REFRESH_SECONDS;

export type PrivateJwk = JWK & { kid: string; alg: SigningAlgorithm; use: 'sig' };

/** The encryption binding of a key: its ciphertext only opens on its own row. */
const associatedData = (poolId: string, kid: string) => `signing-key:${poolId}:${kid}`;

const KEY_PAIRS: Record<SigningAlgorithm, () => { privateKey: KeyObject }> = {
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
};

/** A new private key for `alg`: P-256 for ES256, 2048-bit RSA for RS256. */
export function newPrivateKey(alg: SigningAlgorithm): KeyObject {
  return KEY_PAIRS[alg]().privateKey;
}

async function generateKey(
  poolId: string,
  alg: SigningAlgorithm,
  box: SecretBox,
  now: Date,
): Promise<SigningKeyRecord> {
  const jwk = newPrivateKey(alg).export({ format: 'jwk' }) as JsonWebKey & JWK;
  const kid = await calculateJwkThumbprint(jwk);
  const privateJwk: PrivateJwk = { ...jwk, kid, alg, use: 'sig' };
  return {
    poolId,
    kid,
    alg,
    encryptedJwk: box.seal(JSON.stringify(privateJwk), associatedData(poolId, kid)),
    createdAt: now,
    retiredAt: null,
  };
}

/**
 * Creates the pool's first keys unless some exist. Safe when several
 * processes start at once: exactly one set is stored and all use it.
 */
export async function ensureSigningKeys(
  repository: SigningKeyRepository,
  poolId: string,
  box: SecretBox,
  now = new Date(),
): Promise<void> {
  if ((await repository.list(poolId)).length > 0) return;
  const keys = await Promise.all(SIGNING_ALGORITHMS.map((alg) => generateKey(poolId, alg, box, now)));
  await repository.add(poolId, keys, { onlyIfNone: true });
}

/**
 * Adds a new key per algorithm, published now and signing from
 * KEY_ACTIVATION_DELAY on (the repository retires the ones they replace as of
 * then), and deletes retired keys past retention. Returns the new kids and
 * when they start signing.
 */
export async function rotateSigningKeys(
  repository: SigningKeyRepository,
  poolId: string,
  box: SecretBox,
  now = new Date(),
): Promise<{ kids: string[]; signsFrom: Date }> {
  const keys = await Promise.all(SIGNING_ALGORITHMS.map((alg) => generateKey(poolId, alg, box, now)));
  const signsFrom = new Date(now.getTime() + KEY_ACTIVATION_DELAY_SECONDS * 1000);
  await repository.add(poolId, keys, { retireReplacedAt: signsFrom });
  await repository.deleteRetiredBefore(
    poolId,
    new Date(now.getTime() - RETIRED_KEY_RETENTION_SECONDS * 1000),
  );
  return { kids: keys.map((key) => key.kid), signsFrom };
}

/**
 * Where a key stands at `now`: 0 signing until its (future) retirement, 1 not
 * replaced (signs once no older key of its algorithm still does), 2 retired.
 */
const standing = (record: SigningKeyRecord, now: Date) =>
  record.retiredAt === null ? 1 : record.retiredAt.getTime() > now.getTime() ? 0 : 2;

/**
 * The private JWKS oidc-provider signs with and publishes (public parts only).
 * Order matters: oidc-provider signs with the first key of an algorithm, so
 * keys still in their signing period come first (the oldest of them: a newer
 * one waits for its predecessor's retirement), then the newest unreplaced
 * key, then retired ones still within retention.
 * @throws {Error} when a key does not decrypt with this secret.
 */
export function openSigningKeys(
  records: readonly SigningKeyRecord[],
  box: SecretBox,
  now = new Date(),
): { keys: PrivateJwk[] } {
  const oldest = now.getTime() - RETIRED_KEY_RETENTION_SECONDS * 1000;
  const published = records
    .filter((record) => record.retiredAt === null || record.retiredAt.getTime() > oldest)
    .sort((a, b) => {
      const rank = standing(a, now) - standing(b, now);
      if (rank !== 0) return rank;
      const age = a.createdAt.getTime() - b.createdAt.getTime();
      return standing(a, now) === 0 ? age : -age;
    });
  return {
    keys: published.map(
      (record) =>
        JSON.parse(box.open(record.encryptedJwk, associatedData(record.poolId, record.kid))) as PrivateJwk,
    ),
  };
}

/**
 * Identifies a key set as it stands at `now`, to notice when another process
 * rotated the keys, and when a rotated key's time to sign has come.
 */
export function keySetVersion(records: readonly SigningKeyRecord[], now = new Date()): string {
  return records
    .map((record) => `${record.kid}:${record.retiredAt?.getTime() ?? ''}:${standing(record, now)}`)
    .join(',');
}
