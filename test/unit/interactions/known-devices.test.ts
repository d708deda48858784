import { randomBytes } from 'node:crypto';
import test from 'ava';
import { knownDeviceOf, rememberDevice } from '../../../src/interactions/known-devices.ts';

const key = randomBytes(32);
const ada = { poolId: 'acme', email: 'ada@acme.example' };

test('a remembered browser is known for that account, pool and key only', (t) => {
  const cookie = rememberDevice(key, undefined, ada);
  const device = knownDeviceOf(key, cookie, ada);
  t.regex(device ?? '', /^[\w-]{22}$/);
  t.is(knownDeviceOf(key, cookie, { ...ada, email: 'eve@acme.example' }), undefined);
  t.is(knownDeviceOf(key, cookie, { ...ada, poolId: 'other' }), undefined);
  t.is(knownDeviceOf(randomBytes(32), cookie, ada), undefined);
  const [device0 = '', mac = ''] = cookie.split('.');
  const forged = Buffer.from(mac, 'base64url');
  forged[0] = (forged[0] ?? 0) ^ 1;
  t.is(knownDeviceOf(key, `${device0}.${forged.toString('base64url')}`, ada), undefined, 'a forged MAC');
  t.is(knownDeviceOf(key, 'garbage~.~x.y', ada), undefined);
  t.is(knownDeviceOf(key, rememberDevice(key, cookie, ada), ada), device, 'signing in again keeps the id');
});

test('one cookie remembers the five latest accounts of a shared browser', (t) => {
  let cookie: string | undefined;
  const accounts = Array.from({ length: 6 }, (_, i) => ({ poolId: 'acme', email: `user${i}@acme.example` }));
  for (const account of accounts) cookie = rememberDevice(key, cookie, account);
  t.deepEqual(
    accounts.map((account) => knownDeviceOf(key, cookie, account) !== undefined),
    [false, true, true, true, true, true],
  );
});
