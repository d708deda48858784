/**
 * The RP ID scopes every passkey of the pool, for good: it must be a domain
 * a browser accepts as one (a registrable domain or below it, never a public
 * suffix or an IP address), or `localhost` for development.
 * https://www.w3.org/TR/webauthn-3/#rp-id
 */
import { parse } from 'tldts';
import type { Finding, PoolCheck } from './finding.ts';
import { isDnsName } from './hostnames.ts';

export const checkRpId: PoolCheck = (pool) => {
  const rpId = pool.passkeys.rp.id;
  const problem = describeRpIdProblem(rpId);
  return problem ? [{ path: ['passkeys', 'rp', 'id'], message: problem } satisfies Finding] : [];
};

function describeRpIdProblem(rpId: string): string | undefined {
  if (rpId === 'localhost') return undefined;
  if (/[:/?#@]/.test(rpId)) return `"${rpId}" must be a bare domain: no scheme, port, path or credentials`;
  if (rpId !== rpId.toLowerCase()) return `"${rpId}" must be lowercase ("${rpId.toLowerCase()}")`;
  const parsed = parse(rpId, { allowPrivateDomains: true });
  if (parsed.isIp || /^[\d.]+$/.test(rpId) || rpId.startsWith('[')) {
    return `"${rpId}" is an IP address; an RP ID must be a domain name (or localhost)`;
  }
  if (!isDnsName(rpId)) return `"${rpId}" is not a valid domain name`;
  if (!parsed.domain) return `"${rpId}" is a public suffix; use a domain registered under it`;
  return undefined;
}
