/**
 * The key a per-address rate limit counts a client under. An IPv4 address is
 * one key. An IPv6 client is keyed by its /64: a home line or a rented server
 * routinely gets a whole /64 (RFC 6177 §3, RFC 7421), and privacy addresses
 * (RFC 8981) change inside it, so keyed by the full address one attacker would
 * have 2^64 allowances. An IPv4-mapped address (`::ffff:192.0.2.1`, what a
 * dual-stack socket reports for an IPv4 client, RFC 4291 §2.5.5.2) is the IPv4
 * client it maps, not the /64 every such address shares.
 */
import { isIP } from 'node:net';

/**
 * `ip` as a limit key: an IPv4 address as it is, an IPv6 one as its /64
 * (`2001:db8:1:2::/64`). Whatever is not an IP address (a proxy's odd
 * X-Forwarded-For) is its own key.
 */
export function addressKey(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of an address `isIP` calls IPv6 (with `::`, a zone, or a dotted IPv4 tail). */
function ipv6Groups(ip: string): number[] | undefined {
  let address = ip.split('%')[0] ?? '';
  const lastColon = address.lastIndexOf(':');
  const tail = address.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    address = `${address.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = address.split('::');
  const part = (text: string | undefined) =>
    text ? text.split(':').map((group) => Number.parseInt(group, 16)) : [];
  const before = part(head);
  const after = part(rest);
  const groups =
    rest === undefined ? before : [...before, ...Array(8 - before.length - after.length).fill(0), ...after];
  return groups.length === 8 &&
    groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff)
    ? groups
    : undefined;
}
