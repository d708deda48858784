/**
 * The ephemeral store in process memory: the embedded default (one process,
 * no Redis) and the fast backend for tests. Same semantics as the Redis store,
 * checked by the same conformance suite.
 *
 * Atomicity comes from JavaScript itself: every operation reads and writes
 * its maps synchronously, with no `await` in between, so no other call can
 * interleave (the same guarantee a Lua script gets in Redis). Values are kept
 * as strings (payloads as JSON) so callers never share mutable objects with
 * the store, as with Redis.
 *
 * Expiry is checked on every read; a periodic, unref'd sweep frees what
 * nobody reads again.
 */
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { adaptRateLimiter } from '../rate-limiter.ts';
import type { EphemeralStore, OidcModelStore, OidcPayload } from '../types.ts';

/** How often expired entries are swept. */
const SWEEP_INTERVAL_MS = 60_000;

interface Entry {
  value: string;
  /** Epoch ms; undefined: never expires. */
  expiresAt: number | undefined;
}

interface Artifact {
  payload: string;
  consumed: number | undefined;
  uid: string | undefined;
  userCode: string | undefined;
  grantId: string | undefined;
  accountId: string | undefined;
  expiresAt: number | undefined;
}

const toMs = (ttlSeconds: number) => Math.max(1, Math.ceil(ttlSeconds * 1000));
const expiryFrom = (ttlSeconds: number | undefined) =>
  ttlSeconds === undefined ? undefined : Date.now() + toMs(ttlSeconds);
const isLive = (entry: { expiresAt: number | undefined } | undefined, now = Date.now()) =>
  entry !== undefined && (entry.expiresAt === undefined || entry.expiresAt > now);

/** A Map whose entries vanish at their expiry. */
class ExpiringMap<V extends { expiresAt: number | undefined }> {
  readonly #entries = new Map<string, V>();

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (isLive(entry)) return entry;
    if (entry) this.#entries.delete(key);
    return undefined;
  }

  set(key: string, entry: V): void {
    this.#entries.set(key, entry);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Removes expired entries, calling `onExpired` for each. */
  sweep(onExpired?: (key: string, entry: V) => void): void {
    const now = Date.now();
    for (const [key, entry] of this.#entries) {
      if (isLive(entry, now)) continue;
      this.#entries.delete(key);
      onExpired?.(key, entry);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * Grant id (or account id) → artifact keys; mirrors the Redis grant and
 * account sets (expiry follows the members).
 */
type MemberIndex = Map<string, Set<string>>;

/** Adds `key` to the index entry `name`. */
function addMember(index: MemberIndex, name: string, key: string): void {
  const members = index.get(name) ?? new Set<string>();
  members.add(key);
  index.set(name, members);
}

/** Removes `key` from the index entry `name`, and the entry once empty. */
function dropMember(index: MemberIndex, name: string, key: string): void {
  const members = index.get(name);
  members?.delete(key);
  if (members?.size === 0) index.delete(name);
}

function createOidcModels(
  artifacts: ExpiringMap<Artifact>,
  indexes: ExpiringMap<Entry>,
  grants: MemberIndex,
  accounts: MemberIndex,
  poolId: string,
): OidcModelStore {
  const base = `${poolId}\u0000`;
  const artifactKey = (model: string, id: string) => `${base}${model}\u0000${id}`;
  const uidKey = (uid: string) => `${base}uid\u0000${uid}`;
  const userCodeKey = (code: string) => `${base}userCode\u0000${code}`;
  const grantKey = (grantId: string) => `${base}${grantId}`;
  const accountKey = (accountId: string) => `${base}${accountId}`;

  const toPayload = (artifact: Artifact | undefined): OidcPayload | undefined => {
    if (!artifact) return undefined;
    const payload = JSON.parse(artifact.payload) as OidcPayload;
    if (artifact.consumed !== undefined) payload.consumed = artifact.consumed;
    return payload;
  };

  const dropIndex = (indexKey: string, id: string) => {
    if (indexes.get(indexKey)?.value === id) indexes.delete(indexKey);
  };

  const remove = (key: string, id: string) => {
    const artifact = artifacts.get(key);
    if (!artifact) return;
    if (artifact.uid !== undefined) dropIndex(uidKey(artifact.uid), id);
    if (artifact.userCode !== undefined) dropIndex(userCodeKey(artifact.userCode), id);
    if (artifact.grantId !== undefined) grants.get(grantKey(artifact.grantId))?.delete(key);
    if (artifact.accountId !== undefined) dropMember(accounts, accountKey(artifact.accountId), key);
    artifacts.delete(key);
  };

  const findByIndex = (model: string, indexKey: string) => {
    const id = indexes.get(indexKey)?.value;
    return id === undefined ? undefined : toPayload(artifacts.get(artifactKey(model, id)));
  };

  return {
    async upsert(model, id, payload, expiresInSeconds) {
      const key = artifactKey(model, id);
      const previous = artifacts.get(key);
      remove(key, id);
      const expiresAt = expiryFrom(expiresInSeconds);
      // Single use is monotonic: a re-upsert keeps an earlier consumed mark.
      const consumed =
        previous?.consumed ?? (typeof payload.consumed === 'number' ? payload.consumed : undefined);
      artifacts.set(key, {
        payload: JSON.stringify(payload),
        consumed,
        uid: payload.uid,
        userCode: payload.userCode,
        grantId: payload.grantId,
        accountId: payload.accountId,
        expiresAt,
      });
      if (payload.uid !== undefined) indexes.set(uidKey(payload.uid), { value: id, expiresAt });
      if (payload.userCode !== undefined)
        indexes.set(userCodeKey(payload.userCode), { value: id, expiresAt });
      if (payload.grantId !== undefined) addMember(grants, grantKey(payload.grantId), key);
      if (payload.accountId !== undefined) addMember(accounts, accountKey(payload.accountId), key);
    },

    async find(model, id) {
      return toPayload(artifacts.get(artifactKey(model, id)));
    },

    async findByUid(model, uid) {
      return findByIndex(model, uidKey(uid));
    },

    async findByUserCode(model, userCode) {
      return findByIndex(model, userCodeKey(userCode));
    },

    async consume(model, id) {
      const artifact = artifacts.get(artifactKey(model, id));
      if (!artifact || artifact.consumed !== undefined) return false;
      artifact.consumed = Math.floor(Date.now() / 1000);
      return true;
    },

    async destroy(model, id) {
      remove(artifactKey(model, id), id);
    },

    async revokeByGrantId(model, grantId) {
      const members = grants.get(grantKey(grantId));
      if (!members) return;
      const modelPrefix = `${base}${model}\u0000`;
      for (const key of [...members]) {
        if (key.startsWith(modelPrefix)) remove(key, key.slice(modelPrefix.length));
        // Expired members are gone from `artifacts` already; forget them here too.
        if (!artifacts.get(key)) members.delete(key);
      }
      if (members.size === 0) grants.delete(grantKey(grantId));
    },

    async listByAccountId(model, accountId) {
      const members = accounts.get(accountKey(accountId));
      const modelPrefix = `${base}${model}\u0000`;
      const found = [];
      for (const key of members ?? []) {
        const artifact = artifacts.get(key);
        if (!artifact)
          members?.delete(key); // expired
        else if (key.startsWith(modelPrefix))
          found.push({ id: key.slice(modelPrefix.length), payload: toPayload(artifact)! });
      }
      if (members?.size === 0) accounts.delete(accountKey(accountId));
      return found;
    },
  };
}

/**
 * Opens an in-process ephemeral store. Its state lives and dies with the
 * process, so it suits one process only (the embedded default) and tests.
 */
export function openMemoryEphemeralStore(): EphemeralStore {
  const values = new ExpiringMap<Entry>();
  const artifacts = new ExpiringMap<Artifact>();
  const indexes = new ExpiringMap<Entry>();
  const grants: MemberIndex = new Map();
  const accounts: MemberIndex = new Map();
  const oidcModels = new Map<string, OidcModelStore>();

  const sweep = () => {
    values.sweep();
    indexes.sweep();
    artifacts.sweep((key, artifact) => {
      const base = key.slice(0, key.indexOf('\u0000') + 1);
      if (artifact.grantId !== undefined) dropMember(grants, `${base}${artifact.grantId}`, key);
      if (artifact.accountId !== undefined) dropMember(accounts, `${base}${artifact.accountId}`, key);
    });
  };
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS);
  timer.unref();

  return {
    async set(key, value, ttlSeconds) {
      values.set(key, { value, expiresAt: expiryFrom(ttlSeconds) });
    },

    async setIfAbsent(key, value, ttlSeconds) {
      if (values.get(key)) return false;
      values.set(key, { value, expiresAt: expiryFrom(ttlSeconds) });
      return true;
    },

    async get(key) {
      return values.get(key)?.value;
    },

    async take(key) {
      const entry = values.get(key);
      values.delete(key);
      return entry?.value;
    },

    async delete(key) {
      values.delete(key);
    },

    async increment(key, ttlSeconds) {
      const entry = values.get(key);
      if (!entry) {
        values.set(key, { value: '1', expiresAt: expiryFrom(ttlSeconds) });
        return 1;
      }
      const count = Number(entry.value) + 1;
      if (!Number.isInteger(count)) throw new Error(`ephemeral key ${key} does not hold a counter`);
      entry.value = String(count);
      return count;
    },

    oidcModels(poolId) {
      let models = oidcModels.get(poolId);
      if (!models) {
        models = createOidcModels(artifacts, indexes, grants, accounts, poolId);
        oidcModels.set(poolId, models);
      }
      return models;
    },

    rateLimiter({ name, points, windowSeconds }) {
      return adaptRateLimiter(
        new RateLimiterMemory({ keyPrefix: name, points, duration: windowSeconds }),
        'redis',
      );
    },

    async ping() {},

    async close() {
      clearInterval(timer);
      values.clear();
      artifacts.clear();
      indexes.clear();
      grants.clear();
      accounts.clear();
    },
  };
}
