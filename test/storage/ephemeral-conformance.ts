/**
 * The EphemeralStore conformance suite (dex-style): every backend (memory,
 * Redis) must pass it unchanged. It pins what the login flow relies on:
 * single-use challenges (an atomic take), TTLs including fractional ones,
 * fixed-window counters that stay exact under concurrency, and
 * oidc-provider's short-lived models (oidc-model-conformance.ts).
 *
 * One store per test file, opened on first use; every test uses its own keys.
 */
import { randomBytes } from 'node:crypto';
import type { TestFn } from 'ava';
import type { EphemeralStore } from '../../src/storage/types.ts';
import { registerOidcModelConformance } from './oidc-model-conformance.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const uniqueKey = (label: string) => `${label}:${randomBytes(6).toString('hex')}`;

/**
 * A fractional TTL short enough to wait out, long enough that checks made
 * right after writing still see the value on a loaded machine.
 */
const SHORT_TTL_SECONDS = 0.8;
const PAST_SHORT_TTL_MS = 1_100;

/**
 * Registers the suite under `name`. `open` is called once, on the first test
 * that runs; the store is closed after the file's tests.
 */
export function registerEphemeralConformance(
  test: TestFn,
  name: string,
  open: () => Promise<EphemeralStore>,
): void {
  let opened: Promise<EphemeralStore> | undefined;
  const store = () => {
    opened ??= open();
    return opened;
  };
  test.after.always(`${name}: close the store`, async () => {
    if (opened) await (await opened).close();
  });

  test(`${name}: get returns what set stored, and set replaces it`, async (t) => {
    const s = await store();
    const key = uniqueKey('value');
    await s.set(key, 'first', 60);
    t.is(await s.get(key), 'first');
    await s.set(key, 'second', 60);
    t.is(await s.get(key), 'second');
    t.is(await s.get(uniqueKey('missing')), undefined);
  });

  test(`${name}: a challenge is taken once`, async (t) => {
    const s = await store();
    const key = uniqueKey('challenge');
    await s.set(key, 'challenge-bytes', 60);
    t.is(await s.take(key), 'challenge-bytes');
    t.is(await s.take(key), undefined);
    t.is(await s.get(key), undefined);
  });

  test(`${name}: of 20 concurrent takes exactly one gets the value`, async (t) => {
    const s = await store();
    const key = uniqueKey('challenge');
    await s.set(key, 'once', 60);
    const results = await Promise.all(Array.from({ length: 20 }, () => s.take(key)));
    t.deepEqual(
      results.filter((value) => value !== undefined),
      ['once'],
    );
  });

  test(`${name}: values expire after a fractional TTL`, async (t) => {
    const s = await store();
    const [kept, expired, taken] = [uniqueKey('kept'), uniqueKey('expiring'), uniqueKey('expiring')];
    await s.set(kept, 'v', 60);
    await s.set(expired, 'v', SHORT_TTL_SECONDS);
    await s.set(taken, 'v', SHORT_TTL_SECONDS);
    await sleep(PAST_SHORT_TTL_MS);
    t.is(await s.get(kept), 'v', 'a longer TTL outlives the wait');
    t.is(await s.get(expired), undefined);
    t.is(await s.take(taken), undefined, 'an expired challenge cannot be taken');
  });

  test(`${name}: delete removes a value`, async (t) => {
    const s = await store();
    const key = uniqueKey('deleted');
    await s.set(key, 'v', 60);
    await s.delete(key);
    t.is(await s.get(key), undefined);
    await t.notThrowsAsync(() => s.delete(key), 'deleting a missing key is harmless');
  });

  test(`${name}: setIfAbsent stores only when the key is absent or expired`, async (t) => {
    const s = await store();
    const key = uniqueKey('marker');
    t.true(await s.setIfAbsent(key, 'first', SHORT_TTL_SECONDS));
    t.false(await s.setIfAbsent(key, 'second', 60));
    t.is(await s.get(key), 'first');
    await sleep(PAST_SHORT_TTL_MS);
    t.true(await s.setIfAbsent(key, 'third', 60), 'an expired key counts as absent');
    t.is(await s.get(key), 'third');
  });

  test(`${name}: of 10 concurrent setIfAbsent exactly one stores`, async (t) => {
    const s = await store();
    const key = uniqueKey('marker');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => s.setIfAbsent(key, `v${i}`, 60)));
    t.is(results.filter(Boolean).length, 1);
    t.is(await s.get(key), `v${results.indexOf(true)}`);
  });

  test(`${name}: 50 concurrent increments count to 50`, async (t) => {
    const s = await store();
    const key = uniqueKey('counter');
    const results = await Promise.all(Array.from({ length: 50 }, () => s.increment(key, 60)));
    t.deepEqual(
      [...results].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    t.is(await s.get(key), '50');
  });

  test(`${name}: increment keeps the window its first increment opened`, async (t) => {
    const s = await store();
    const key = uniqueKey('counter');
    t.is(await s.increment(key, 2 * SHORT_TTL_SECONDS), 1);
    await sleep(200);
    t.is(await s.increment(key, 60), 2, 'a later, longer TTL does not extend the window');
    await sleep(2 * SHORT_TTL_SECONDS * 1000);
    t.is(await s.get(key), undefined);
    t.is(await s.increment(key, 60), 1, 'a new window starts from 1');
  });

  test(`${name}: a rate limiter refuses past its points, says when to retry, and resets`, async (t) => {
    const s = await store();
    const limiter = s.rateLimiter({ name: uniqueKey('limit'), points: 3, windowSeconds: 60 });
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.consume('ada@x.example'));
    t.deepEqual(
      decisions.map((decision) => decision.allowed),
      [true, true, true, false],
    );
    t.is(decisions[2]?.remaining, 0);
    t.deepEqual(
      decisions.map((decision) => decision.firstRefusal),
      [false, false, false, true],
    );
    t.false((await limiter.consume('ada@x.example')).firstRefusal, 'only the first refusal of the window');
    t.true((decisions[3]?.retryAfterSeconds ?? 0) > 0 && (decisions[3]?.retryAfterSeconds ?? 0) <= 60);
    t.true((await limiter.consume('other@x.example')).allowed, 'keys are counted apart');
    await limiter.reset('ada@x.example');
    t.true((await limiter.consume('ada@x.example')).allowed);
  });

  test(`${name}: peeking at a rate limiter counts nothing, and says no once every point is used`, async (t) => {
    const s = await store();
    const limiter = s.rateLimiter({ name: uniqueKey('limit'), points: 2, windowSeconds: 60 });
    t.like(await limiter.peek('ada@x.example'), { allowed: true, remaining: 2 });
    await limiter.consume('ada@x.example');
    t.like(await limiter.peek('ada@x.example'), { allowed: true, remaining: 1 });
    t.like(await limiter.peek('ada@x.example'), { allowed: true, remaining: 1 }, 'a peek counts nothing');
    await limiter.consume('ada@x.example');
    const spent = await limiter.peek('ada@x.example');
    t.false(spent.allowed);
    t.true(spent.retryAfterSeconds > 0 && spent.retryAfterSeconds <= 60);
    t.true((await limiter.peek('other@x.example')).allowed, 'keys are counted apart');
  });

  test(`${name}: of 12 concurrent attempts against 5 points exactly 5 are allowed`, async (t) => {
    const s = await store();
    const limiter = s.rateLimiter({ name: uniqueKey('limit'), points: 5, windowSeconds: 60 });
    const decisions = await Promise.all(Array.from({ length: 12 }, () => limiter.consume('203.0.113.9')));
    t.is(decisions.filter((decision) => decision.allowed).length, 5);
  });

  test(`${name}: ping resolves while the store is up`, async (t) => {
    const s = await store();
    await t.notThrowsAsync(() => s.ping());
  });

  registerOidcModelConformance(test, name, async (poolId) => (await store()).oidcModels(poolId));
}
