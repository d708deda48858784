/**
 * Known devices: a browser that completed a sign-in to an account carries a
 * cookie that says so (a random device id and an HMAC over pool, email and
 * id, under a key derived from the operator secret). Password guessing is then
 * limited per device for that account instead of per account, so an attacker
 * who trips the account-wide limit cannot lock the owner out of the browsers
 * they already use. OWASP, "Slow Down Online Guessing Attacks with Device
 * Cookies": https://owasp.org/www-community/Slow_Down_Online_Guessing_Attacks_with_Device_Cookies
 *
 * One cookie per pool holds up to MAX_ACCOUNTS entries, newest first, so a
 * shared computer remembers a family's accounts.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const KNOWN_DEVICE_COOKIE = 'postern.device';
/** How long a browser stays known without signing in again. */
export const KNOWN_DEVICE_MAX_AGE_SECONDS = 180 * 24 * 60 * 60;
const MAX_ACCOUNTS = 5;
/** One entry: a 16-byte device id and a 16-byte MAC, base64url, joined by a dot. */
const ENTRY = /^[\w-]{22}\.[\w-]{22}$/;

/** The request's view of the cookie (the http layer reads and writes it). */
export interface KnownDeviceCookie {
  read(): string | undefined;
  write(value: string): void;
}

const macOf = (key: Uint8Array, poolId: string, email: string, device: string) =>
  createHmac('sha256', key).update(`${poolId}\0${email}\0${device}`).digest().subarray(0, 16);

const validEntries = (raw: string | undefined) =>
  (raw ?? '')
    .split('~')
    .filter((entry) => ENTRY.test(entry))
    .slice(0, MAX_ACCOUNTS);

function entriesOf(raw: string | undefined): Array<{ device: string; mac: Buffer }> {
  return validEntries(raw).map((entry) => {
    const [device = '', mac = ''] = entry.split('.');
    return { device, mac: Buffer.from(mac, 'base64url') };
  });
}

/** The device id this browser holds for the account, when its cookie vouches for it. */
export function knownDeviceOf(
  key: Uint8Array,
  raw: string | undefined,
  { poolId, email }: { poolId: string; email: string },
): string | undefined {
  for (const { device, mac } of entriesOf(raw)) {
    const expected = macOf(key, poolId, email, device);
    if (mac.length === expected.length && timingSafeEqual(mac, expected)) return device;
  }
  return undefined;
}

/** The cookie value after a sign-in to the account: its entry first, keeping its device id. */
export function rememberDevice(
  key: Uint8Array,
  raw: string | undefined,
  { poolId, email }: { poolId: string; email: string },
): string {
  const device = knownDeviceOf(key, raw, { poolId, email }) ?? randomBytes(16).toString('base64url');
  const entry = `${device}.${macOf(key, poolId, email, device).toString('base64url')}`;
  const others = validEntries(raw)
    .filter((candidate) => !candidate.startsWith(`${device}.`))
    .slice(0, MAX_ACCOUNTS - 1);
  return [entry, ...others].join('~');
}
