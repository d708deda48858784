/**
 * The Redis ephemeral store against the shared conformance suite, plus what
 * only Redis has: key prefixes, millisecond TTLs, and failing fast when the
 * server is unreachable.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import test from 'ava';
import { Redis } from 'ioredis';
import { StoreUnavailableError } from '../../src/storage/errors.ts';
import { openRedisEphemeralStore } from '../../src/storage/redis/redis-ephemeral-store.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import {
  deleteKeysWithPrefix,
  probeRedis,
  redisTestUrl,
  serviceTest,
  uniqueKeyPrefix,
} from '../support/services.ts';
import { registerEphemeralConformance } from './ephemeral-conformance.ts';

const redis = await probeRedis();
const withRedis = serviceTest(test, redis);
const keyPrefix = uniqueKeyPrefix();

test.after.always('delete this file’s Redis keys', async () => {
  if (redis.available) await deleteKeysWithPrefix(keyPrefix);
});

registerEphemeralConformance(withRedis, 'redis', () =>
  openRedisEphemeralStore({ url: redisTestUrl(), keyPrefix }),
);

withRedis('redis: every key starts with the prefix, TTLs in milliseconds', async (t) => {
  const prefix = uniqueKeyPrefix();
  const store = await openRedisEphemeralStore({ url: redisTestUrl(), keyPrefix: prefix });
  const raw = new Redis(redisTestUrl());
  t.teardown(async () => {
    await store.close();
    await deleteKeysWithPrefix(prefix);
    raw.disconnect();
  });

  // A fractional TTL, read back at once: milliseconds, not rounded to seconds either way,
  // with room for a busy machine between the two calls.
  await store.set('challenge:1', 'v', 30.75);
  const pttl = await raw.pttl(`${prefix}challenge:1`);
  t.true(pttl > 30_000 && pttl <= 30_750, `PTTL ${pttl} is the fractional TTL in ms`);
  await store.increment('counter:1', 10);
  await store.oidcModels('pool').upsert('Session', 's', { uid: 'u', grantId: 'g' }, 10);

  const keys = (await raw.keys(`${prefix}*`)).sort();
  t.deepEqual(keys, [
    `${prefix}challenge:1`,
    `${prefix}counter:1`,
    `${prefix}oidc:account-index`,
    `${prefix}oidc:pool:Session:s`,
    `${prefix}oidc:pool:grant:g`,
    `${prefix}oidc:pool:uid:u`,
  ]);
  t.deepEqual(await raw.hgetall(`${prefix}oidc:pool:Session:s`), {
    payload: JSON.stringify({ uid: 'u', grantId: 'g' }),
    uid: 'u',
    grantId: 'g',
  });
});

withRedis('redis: the grant set lives as long as its longest member', async (t) => {
  const prefix = uniqueKeyPrefix();
  const store = await openRedisEphemeralStore({ url: redisTestUrl(), keyPrefix: prefix });
  const raw = new Redis(redisTestUrl());
  t.teardown(async () => {
    await store.close();
    await deleteKeysWithPrefix(prefix);
    raw.disconnect();
  });
  const models = store.oidcModels('pool');
  await models.upsert('AccessToken', 'long', { grantId: 'g' }, 100);
  await models.upsert('AccessToken', 'short', { grantId: 'g' }, 10);
  const pttl = await raw.pttl(`${prefix}oidc:pool:grant:g`);
  t.true(pttl > 90_000, `a shorter member does not shorten it (PTTL ${pttl})`);
  await models.upsert('Grant', 'forever', { grantId: 'g' }, undefined);
  t.is(await raw.pttl(`${prefix}oidc:pool:grant:g`), -1, 'a member without expiry makes it persistent');
});

withRedis(
  'redis: the account set lives as long as its longest member and goes with the last one',
  async (t) => {
    const prefix = uniqueKeyPrefix();
    const store = await openRedisEphemeralStore({ url: redisTestUrl(), keyPrefix: prefix });
    const raw = new Redis(redisTestUrl());
    t.teardown(async () => {
      await store.close();
      await deleteKeysWithPrefix(prefix);
      raw.disconnect();
    });
    const models = store.oidcModels('pool');
    await models.upsert('Session', 'long', { accountId: 'ada' }, 100);
    await models.upsert('Session', 'short', { accountId: 'ada' }, 10);
    const pttl = await raw.pttl(`${prefix}oidc:pool:account:ada`);
    t.true(pttl > 90_000, `a shorter member does not shorten it (PTTL ${pttl})`);
    t.is(await raw.hget(`${prefix}oidc:pool:Session:long`, 'accountId'), 'ada');
    await models.destroy('Session', 'long');
    await models.destroy('Session', 'short');
    t.is(await raw.exists(`${prefix}oidc:pool:account:ada`), 0);
  },
);

withRedis(
  'redis: sessions stored before account sets existed are indexed by account when the store opens',
  async (t) => {
    const prefix = uniqueKeyPrefix();
    const raw = new Redis(redisTestUrl());
    t.teardown(async () => {
      await deleteKeysWithPrefix(prefix);
      raw.disconnect();
    });
    // As the previous version wrote them: the account only inside the payload, no account set.
    const old = (pool: string, id: string, payload: object, ttlMs?: number) =>
      raw
        .multi()
        .hset(`${prefix}oidc:${pool}:Session:${id}`, 'payload', JSON.stringify(payload))
        .pexpire(`${prefix}oidc:${pool}:Session:${id}`, ttlMs ?? 60_000)
        .exec();
    await old('pool', 'stolen', { uid: 'u-1', accountId: 'ada' });
    await old('pool', 'laptop', { uid: 'u-2', accountId: 'ada' }, 120_000);
    await old('pool', 'anonymous', { uid: 'u-3' });
    await old('other-pool', 'elsewhere', { uid: 'u-4', accountId: 'ada' });
    await old('pool', 'garbled', { nope: true });
    await raw.hset(`${prefix}oidc:pool:Session:not-json`, 'payload', '{');

    const store = await openRedisEphemeralStore({ url: redisTestUrl(), keyPrefix: prefix });
    t.teardown(() => store.close());
    const sessions = await store.oidcModels('pool').listByAccountId('Session', 'ada');
    t.deepEqual(sessions.map((session) => session.id).sort(), ['laptop', 'stolen']);
    t.like(sessions.find((session) => session.id === 'stolen')?.payload, { uid: 'u-1', accountId: 'ada' });
    t.is((await store.oidcModels('other-pool').listByAccountId('Session', 'ada')).length, 1);
    const pttl = await raw.pttl(`${prefix}oidc:pool:account:ada`);
    t.true(pttl > 60_000 && pttl <= 120_000, `the set lives as long as its longest member (PTTL ${pttl})`);
    t.truthy(await raw.get(`${prefix}oidc:account-index`), 'done once for this prefix');

    // Indexed like a new one: destroying it leaves the set.
    await store.oidcModels('pool').destroy('Session', 'stolen');
    t.deepEqual(await raw.smembers(`${prefix}oidc:pool:account:ada`), [`${prefix}oidc:pool:Session:laptop`]);
  },
);

test('redis: an unreachable server makes ping and operations fail fast with StoreUnavailableError', async (t) => {
  const started = Date.now();
  const store = await openRedisEphemeralStore({ url: 'redis://127.0.0.1:1', keyPrefix: uniqueKeyPrefix() });
  t.teardown(() => store.close());
  const ping = await t.throwsAsync(() => store.ping(), { instanceOf: StoreUnavailableError });
  t.is(ping?.service, 'redis');
  await t.throwsAsync(() => store.take('challenge'), { instanceOf: StoreUnavailableError });
  await t.throwsAsync(() => store.oidcModels('pool').consume('AuthorizationCode', 'c'), {
    instanceOf: StoreUnavailableError,
  });
  t.true(Date.now() - started < 10_000, `answered in ${Date.now() - started} ms`);
});

test('redis: connection errors are reported to the logger once, not thrown as unhandled events', async (t) => {
  const warnings: string[] = [];
  const store = await openRedisEphemeralStore({
    url: 'redis://127.0.0.1:1',
    keyPrefix: uniqueKeyPrefix(),
    logger: { warn: (_details, message) => warnings.push(message) },
  });
  t.teardown(() => store.close());
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(warnings.length, 1);
});

withRedis(
  'redis: after one command times out on a stalled Redis, the next fail at once, touching nothing, until it answers again',
  async (t) => {
    const { hostname, port } = new URL(redisTestUrl());
    const proxy = await startFaultProxy({ host: hostname, port: Number(port) });
    t.teardown(() => proxy.close());
    const store = await openRedisEphemeralStore({
      url: `redis://127.0.0.1:${proxy.port}`,
      keyPrefix,
      commandTimeoutMs: 300,
    });
    t.teardown(() => store.close());
    await store.set('stalled-challenge', 'kept', 60);
    const limiter = store.rateLimiter({ name: 'stall', points: 5, windowSeconds: 60 });

    proxy.setMode({ kind: 'stall' });
    const timedOut = Date.now();
    await t.throwsAsync(() => store.get('stalled-challenge'), { instanceOf: StoreUnavailableError });
    t.true(Date.now() - timedOut >= 250, 'the first command waited for its timeout');
    await t.throwsAsync(() => limiter.consume('someone'), { instanceOf: StoreUnavailableError });

    // A request's next commands do not each wait for a timeout of their own.
    const refused = Date.now();
    await t.throwsAsync(() => store.take('stalled-challenge'), { instanceOf: StoreUnavailableError });
    await t.throwsAsync(() => store.increment('stalled-counter', 60), { instanceOf: StoreUnavailableError });
    await t.throwsAsync(() => store.oidcModels('pool').find('Session', 's'), {
      instanceOf: StoreUnavailableError,
    });
    await t.throwsAsync(() => limiter.consume('someone'), { instanceOf: StoreUnavailableError });
    t.true(Date.now() - refused < 100, `refused in ${Date.now() - refused} ms`);
    await t.throwsAsync(() => store.ping(), { instanceOf: StoreUnavailableError });

    proxy.setMode({ kind: 'pass' });
    const deadline = Date.now() + 5_000;
    let value: string | undefined;
    while (Date.now() < deadline) {
      try {
        value = await store.take('stalled-challenge');
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    t.is(value, 'kept', 'the take refused while stalled spent nothing, and commands work again');
    t.true((await limiter.consume('someone')).allowed);
  },
);

/** A port nothing listens on, for a throwaway redis-server this test may stop and start. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const redisServerBinary = spawnSync('redis-server', ['--version']).status === 0;

(redisServerBinary ? test : test.skip)(
  'redis: while the server is down operations fail at once, and work again when it returns',
  async (t) => {
    const port = await freePort();
    const start = async (): Promise<ChildProcess> => {
      const child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      const probe = new Redis({
        port,
        lazyConnect: true,
        retryStrategy: () => 50,
        maxRetriesPerRequest: null,
      });
      probe.on('error', () => {});
      await probe.ping();
      probe.disconnect();
      return child;
    };
    let server = await start();
    t.teardown(() => {
      server.kill('SIGKILL');
    });
    const store = await openRedisEphemeralStore({ url: `redis://127.0.0.1:${port}` });
    t.teardown(() => store.close());
    await store.set('k', 'v', 60);

    server.kill('SIGKILL');
    await new Promise((resolve) => server.once('exit', resolve));
    const started = Date.now();
    await t.throwsAsync(() => store.get('k'), { instanceOf: StoreUnavailableError });
    t.true(Date.now() - started < 1_000, 'failed without queueing');

    server = await start();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        await store.ping();
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await t.notThrowsAsync(() => store.ping(), 'reconnected by itself');
    t.is(await store.increment('counter', 60), 1);
  },
);
