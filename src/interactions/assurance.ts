/**
 * What a login proved, as the ID token states it (CONTRACT.md, Tokens):
 * - amr (RFC 8176): the union of each factor's methods, plus `mfa` when two
 *   factors were used or a passkey was verified with user verification;
 * - acr: `phrh` when a device-bound passkey was used, `phr` for any passkey,
 *   `0` otherwise, and `0` for a recovery sign-in (a recovery code stood in
 *   for a lost factor). It never claims more than was done.
 */
import type { CompletedFactor } from './progress.ts';

export interface Assurance {
  amr: string[];
  acr: 'phrh' | 'phr' | '0';
}

export function assessAssurance(factors: readonly CompletedFactor[]): Assurance {
  const amr = new Set(factors.flatMap((factor) => factor.amr));
  const methods = new Set(factors.map((factor) => factor.method));
  if (methods.size >= 2 || factors.some((factor) => factor.multiFactor)) amr.add('mfa');
  const acrs = new Set(factors.map((factor) => factor.acr));
  const acr = methods.has('recovery_code') ? '0' : acrs.has('phrh') ? 'phrh' : acrs.has('phr') ? 'phr' : '0';
  return { amr: [...amr].sort(), acr };
}
