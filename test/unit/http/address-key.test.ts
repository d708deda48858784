import test from 'ava';
import { addressKey } from '../../../src/http/address-key.ts';

test('an IPv6 client is limited by its /64; an IPv4 one, also when a dual-stack socket maps it, by its address', (t) => {
  const cases: Array<[string, string]> = [
    ['198.51.100.7', '198.51.100.7'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['::FFFF:c633:6407', '198.51.100.7'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:ffff:0:0:1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:0:0:1::', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['64:ff9b::198.51.100.7', '64:ff9b:0:0::/64'],
    ['not an address', 'not an address'],
    ['', ''],
  ];
  for (const [ip, key] of cases) t.is(addressKey(ip), key, ip);
});

test('two addresses of one /64 share a key; the next /64 has its own', (t) => {
  t.is(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:2:8000::99'));
  t.not(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
  t.not(addressKey('198.51.100.7'), addressKey('198.51.100.8'));
});
