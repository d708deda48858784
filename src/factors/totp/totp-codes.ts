/**
 * TOTP codes (RFC 6238, with the `otpauth` package): the parameters every
 * authenticator app understands (SHA-1, 6 digits, 30 s), a fresh secret, the
 * `otpauth://` URI and its QR code (SVG, rendered here: the secret never
 * reaches a third-party service), and matching a code within one step either
 * side of now. A match names its time step, which the caller records so that
 * no code is accepted twice (RFC 6238 §5.2).
 */
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';

const PERIOD_SECONDS = 30;
/** Steps either side of now a code may come from: clocks drift, users type slowly (RFC 6238 §5.2). */
const WINDOW = 1;

const totpOf = (secret: string, { issuer = '', label = '' } = {}) =>
  new TOTP({
    issuer,
    label,
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: PERIOD_SECONDS,
  });

/** 20 random bytes (RFC 4226 §4's recommended length), base32 as apps take it. */
export const newTotpSecret = (): string => new Secret({ size: 20 }).base32;

/** The `otpauth://totp/…` URI authenticator apps scan. */
export const totpUri = (secret: string, { issuer, account }: { issuer: string; account: string }): string =>
  totpOf(secret, { issuer, label: account }).toString();

/** The URI as a QR code, an SVG document. */
export const totpQrSvg = (uri: string): Promise<string> => QRCode.toString(uri, { type: 'svg', margin: 1 });

/** The time step of `code` when it matches within the window at `nowMs`; undefined otherwise. */
export function matchTotp(secret: string, code: string, nowMs: number): number | undefined {
  const delta = totpOf(secret).validate({ token: code, timestamp: nowMs, window: WINDOW });
  if (delta === null) return undefined;
  return Math.floor(nowMs / 1000 / PERIOD_SECONDS) + delta;
}

/** The code of `secret` at `nowMs` (tests and the software authenticator app of test/support). */
export const totpCodeAt = (secret: string, nowMs: number): string =>
  totpOf(secret).generate({ timestamp: nowMs });
