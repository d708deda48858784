/**
 * The ephemeral store on Redis: challenges, login-flow state, codes,
 * rate-limit counters and oidc-provider's short-lived models, shared by every
 * app process so a login begun on one finishes on another.
 *
 * Fail fast, never queue: with the offline queue off and one retry per
 * command, a request made while Redis is down fails at once with
 * StoreUnavailableError (a 503) instead of piling up; ioredis keeps
 * reconnecting in the background, so service resumes by itself. A Redis
 * that stalls costs one command timeout, not one per command of a request
 * (./stall-guard.ts).
 *
 * Every operation is one round trip: single commands (SET PX, GETDEL,
 * HGETALL) or one Lua script (redis-scripts.ts) where several keys must
 * change together. TTLs are seconds, possibly fractional, sent as
 * milliseconds rounded up.
 *
 * Once per key prefix, when it first connects, the store indexes by account
 * the sessions stored by versions that had no account sets (indexAccounts),
 * so signing a user out everywhere reaches sessions from before the upgrade.
 */

import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { StoreUnavailableError } from '../errors.ts';
import { adaptRateLimiter } from '../rate-limiter.ts';
import type { StoreLogger } from '../store-logger.ts';
import type { EphemeralStore, OidcModelStore, OidcPayload } from '../types.ts';
import {
  INCREMENT,
  OIDC_CONSUME,
  OIDC_DESTROY,
  OIDC_FIND_BY_INDEX,
  OIDC_INDEX_ACCOUNT,
  OIDC_LIST_BY_ACCOUNT,
  OIDC_REVOKE_BY_GRANT,
  OIDC_UPSERT,
} from './redis-scripts.ts';
import { createStallGuard, type StallGuard } from './stall-guard.ts';

export interface OpenRedisEphemeralStoreOptions {
  /** A `redis://` or `rediss://` URL. */
  url: string;
  /** (Optional) Prepended to every key, so several deployments or tests can share a Redis. Defaults to `postern:`. */
  keyPrefix?: string;
  /** (Optional) Receives connection loss and recovery. Defaults to silence. */
  logger?: StoreLogger;
  /** (Optional) Milliseconds to wait for a connection. Defaults to 5000. */
  connectTimeoutMs?: number;
  /**
   * (Optional) Milliseconds before a command without reply fails. Defaults to
   * 400: Redis answers in well under a millisecond, so a command still
   * unanswered then means Redis is stalled or gone, and the request should
   * answer 503 within a second rather than hang (issue 12). Commands fail at
   * once while the connection is down (no offline queue).
   */
  commandTimeoutMs?: number;
}

interface ScriptCommands {
  posternIncrement(key: string, ttlMs: number): Promise<number>;
  posternOidcUpsert(key: string, ...args: string[]): Promise<number>;
  posternOidcConsume(key: string, now: number): Promise<number>;
  posternOidcDestroy(key: string, base: string, id: string): Promise<number>;
  posternOidcFindByIndex(indexKey: string, modelPrefix: string): Promise<string[] | null>;
  posternOidcRevokeByGrant(grantKey: string, base: string, modelPrefix: string): Promise<number>;
  posternOidcListByAccount(accountKey: string, modelPrefix: string): Promise<string[]>;
  posternOidcIndexAccount(sessionKey: string, base: string): Promise<number>;
}

/** Replies meaning "this node cannot serve right now", as opposed to a bug in a command. */
const UNAVAILABLE_REPLY = /^(LOADING|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN|BUSY)\b/;

/** Redis errors become StoreUnavailableError except error replies to a bad command (bugs). */
function translate(error: unknown): unknown {
  if (error instanceof StoreUnavailableError) return error;
  const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
  if (name === 'ReplyError' && !(typeof message === 'string' && UNAVAILABLE_REPLY.test(message)))
    return error;
  return new StoreUnavailableError('redis', { cause: error });
}

/** A Redis call: refused at once while Redis is stalled (./stall-guard.ts), its errors translated. */
type Call = <T>(run: () => Promise<T>) => Promise<T>;

function callThrough(guard: StallGuard): Call {
  return async (run) => {
    try {
      return await guard(run);
    } catch (error) {
      throw translate(error);
    }
  };
}

/** Seconds (maybe fractional) to whole milliseconds, at least 1 (Redis refuses PX 0). */
const toMs = (ttlSeconds: number) => Math.max(1, Math.ceil(ttlSeconds * 1000));

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** An artifact's hash (HGETALL as an object) to what oidc-provider stored. */
function toPayload(fields: Record<string, string>): OidcPayload | undefined {
  if (fields.payload === undefined) return undefined;
  const payload = JSON.parse(fields.payload) as OidcPayload;
  if (fields.consumed !== undefined) payload.consumed = Number(fields.consumed);
  return payload;
}

function pairsToObject(flat: string[] | null): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; flat && i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

function createOidcModels(
  client: Redis & ScriptCommands,
  call: Call,
  prefix: string,
  poolId: string,
): OidcModelStore {
  const base = `${prefix}oidc:${poolId}:`;
  const artifactKey = (model: string, id: string) => `${base}${model}:${id}`;

  const findByIndex = async (model: string, indexKey: string) =>
    toPayload(pairsToObject(await call(() => client.posternOidcFindByIndex(indexKey, `${base}${model}:`))));

  return {
    async upsert(model, id, payload, expiresInSeconds) {
      await call(() =>
        client.posternOidcUpsert(
          artifactKey(model, id),
          base,
          id,
          JSON.stringify(payload),
          expiresInSeconds === undefined ? '' : String(toMs(expiresInSeconds)),
          payload.uid ?? '',
          payload.userCode ?? '',
          payload.grantId ?? '',
          typeof payload.consumed === 'number' ? String(payload.consumed) : '',
          payload.accountId ?? '',
        ),
      );
    },

    async find(model, id) {
      return toPayload(await call(() => client.hgetall(artifactKey(model, id))));
    },

    findByUid(model, uid) {
      return findByIndex(model, `${base}uid:${uid}`);
    },

    findByUserCode(model, userCode) {
      return findByIndex(model, `${base}userCode:${userCode}`);
    },

    async consume(model, id) {
      return (await call(() => client.posternOidcConsume(artifactKey(model, id), nowSeconds()))) === 1;
    },

    async destroy(model, id) {
      await call(() => client.posternOidcDestroy(artifactKey(model, id), base, id));
    },

    async revokeByGrantId(model, grantId) {
      await call(() => client.posternOidcRevokeByGrant(`${base}grant:${grantId}`, base, `${base}${model}:`));
    },

    async listByAccountId(model, accountId) {
      const flat = await call(() =>
        client.posternOidcListByAccount(`${base}account:${accountId}`, `${base}${model}:`),
      );
      const found = [];
      for (let i = 0; i + 2 < flat.length; i += 3) {
        const [id, payload, consumed] = [flat[i]!, flat[i + 1]!, flat[i + 2]!];
        found.push({ id, payload: toPayload(consumed === '' ? { payload } : { payload, consumed })! });
      }
      return found;
    },
  };
}

/** Set under the prefix once every session stored before account sets existed is indexed. */
const ACCOUNT_INDEX_DONE = 'oidc:account-index';

/** SCAN MATCH takes a glob: escape its metacharacters. */
const escapeGlob = (text: string) => text.replace(/[*?[\]\\]/g, '\\$&');

/**
 * Indexes by account every Session under `prefix` that predates account sets
 * (keys `{prefix}oidc:{pool}:Session:{id}`; pool ids have no colon), then
 * marks the prefix done. Idempotent: processes racing through it at boot
 * only repeat harmless work. Returns how many sessions it indexed.
 */
async function indexAccounts(client: Redis & ScriptCommands, prefix: string): Promise<number> {
  const done = `${prefix}${ACCOUNT_INDEX_DONE}`;
  if ((await client.exists(done)) === 1) return 0;
  const oidc = `${prefix}oidc:`;
  let indexed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(oidc)}*:Session:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const pool = key.slice(oidc.length, key.indexOf(':', oidc.length));
      if (!key.startsWith(`${oidc}${pool}:Session:`)) continue;
      indexed += await client.posternOidcIndexAccount(key, `${oidc}${pool}:`);
    }
  } while (cursor !== '0');
  await client.set(done, new Date().toISOString());
  return indexed;
}

/** Resolves once the first connection attempt settled (ready, failed or timed out). */
function firstConnection(client: Redis, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const settle = () => {
      clearTimeout(timer);
      client.off('ready', settle);
      client.off('error', settle);
      client.off('end', settle);
      resolve();
    };
    const timer = setTimeout(settle, timeoutMs);
    client.once('ready', settle);
    client.once('error', settle);
    client.once('end', settle);
  });
}

/**
 * Connects to Redis and returns the ephemeral store on it. Waits for the first
 * connection attempt so requests right after boot do not fail spuriously, but
 * does not fail when Redis is down: `ping()` reports that, and the store
 * starts working when Redis comes back.
 * @throws {Error} when `url` is not a valid Redis URL.
 */
export async function openRedisEphemeralStore(
  options: OpenRedisEphemeralStoreOptions,
): Promise<EphemeralStore> {
  const { url, keyPrefix = 'postern:', logger, connectTimeoutMs = 5_000, commandTimeoutMs = 400 } = options;
  const client = new Redis(url, {
    // Commands issued in the same tick share one write (and Redis one read):
    // on a busy server that is much of the CPU a round trip costs.
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    scripts: {
      posternIncrement: { lua: INCREMENT, numberOfKeys: 1 },
      posternOidcUpsert: { lua: OIDC_UPSERT, numberOfKeys: 1 },
      posternOidcConsume: { lua: OIDC_CONSUME, numberOfKeys: 1 },
      posternOidcDestroy: { lua: OIDC_DESTROY, numberOfKeys: 1 },
      posternOidcFindByIndex: { lua: OIDC_FIND_BY_INDEX, numberOfKeys: 1, readOnly: true },
      posternOidcRevokeByGrant: { lua: OIDC_REVOKE_BY_GRANT, numberOfKeys: 1 },
      posternOidcListByAccount: { lua: OIDC_LIST_BY_ACCOUNT, numberOfKeys: 1 },
      posternOidcIndexAccount: { lua: OIDC_INDEX_ACCOUNT, numberOfKeys: 1 },
    },
  }) as Redis & ScriptCommands;
  // rate-limiter-flexible runs MULTI blocks, which auto-pipelining would
  // interleave with other commands: its own connection, without.
  const limiterClient = client.duplicate({ enableAutoPipelining: false });

  // An 'error' event without a listener would crash the process; log only transitions,
  // not every reconnection attempt.
  let healthy = true;
  // Why the connection is down, for messages: a command refused while offline
  // only says "Stream isn't writeable".
  let connectionError: Error | undefined;
  const onError = (error: Error) => {
    connectionError = error;
    if (!healthy) return;
    healthy = false;
    logger?.warn({ err: error }, 'Redis is unreachable; failing requests until it returns');
  };
  client.on('error', onError);
  limiterClient.on('error', onError);
  const onReady = () => {
    connectionError = undefined;
    if (healthy) return;
    healthy = true;
    logger?.info?.({}, 'Redis is reachable again');
  };
  client.on('ready', onReady);
  limiterClient.on('ready', onReady);
  // One Redis behind both connections: a stall seen on either refuses calls on both.
  const stallGuard = createStallGuard(client, {
    onChange: (stalled) =>
      stalled
        ? logger?.warn({}, 'Redis is not answering; failing requests at once until it does')
        : logger?.info?.({}, 'Redis is answering again'),
  });
  const call = callThrough(stallGuard);
  // Sessions stored before account sets existed: indexed once, over the first connection that works.
  let accountsIndexed: Promise<void> | undefined;
  const indexAccountsOnce = () => {
    accountsIndexed ??= indexAccounts(client, keyPrefix).then(
      (sessions) => {
        if (sessions > 0) logger?.info?.({ sessions }, 'indexed earlier sessions by account');
      },
      (error: unknown) => {
        accountsIndexed = undefined;
        logger?.warn({ err: error }, 'indexing earlier sessions by account failed; retrying on reconnection');
      },
    );
    return accountsIndexed;
  };
  client.on('ready', () => void indexAccountsOnce());
  await Promise.all([
    firstConnection(client, connectTimeoutMs),
    firstConnection(limiterClient, connectTimeoutMs),
  ]);
  if (client.status === 'ready') await indexAccountsOnce();

  const key = (name: string) => `${keyPrefix}${name}`;
  const oidcModels = new Map<string, OidcModelStore>();

  return {
    async set(name, value, ttlSeconds) {
      await call(() => client.set(key(name), value, 'PX', toMs(ttlSeconds)));
    },

    async setIfAbsent(name, value, ttlSeconds) {
      return (await call(() => client.set(key(name), value, 'PX', toMs(ttlSeconds), 'NX'))) === 'OK';
    },

    async get(name) {
      return (await call(() => client.get(key(name)))) ?? undefined;
    },

    async take(name) {
      return (await call(() => client.getdel(key(name)))) ?? undefined;
    },

    async delete(name) {
      await call(() => client.del(key(name)));
    },

    increment(name, ttlSeconds) {
      return call(() => client.posternIncrement(key(name), toMs(ttlSeconds)));
    },

    oidcModels(poolId) {
      let models = oidcModels.get(poolId);
      if (!models) {
        models = createOidcModels(client, call, keyPrefix, poolId);
        oidcModels.set(poolId, models);
      }
      return models;
    },

    rateLimiter({ name, points, windowSeconds }) {
      const limiter = new RateLimiterRedis({
        storeClient: limiterClient,
        keyPrefix: key(`ratelimit:${name}`),
        points,
        duration: windowSeconds,
      });
      return adaptRateLimiter(limiter, 'redis', stallGuard);
    },

    async ping() {
      try {
        await client.ping();
      } catch (error) {
        throw new StoreUnavailableError('redis', { cause: connectionError ?? error });
      }
    },

    async close() {
      await Promise.all(
        [client, limiterClient].map(async (connection) => {
          try {
            await connection.quit();
          } catch {
            // Not connected: stop reconnecting instead.
            connection.disconnect();
          }
        }),
      );
    },
  };
}
