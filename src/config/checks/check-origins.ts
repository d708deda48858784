/**
 * Origins are compared exactly with the clientDataJSON origin of every
 * ceremony, so each must be written as a browser serialises it, be secure
 * (https, or http on localhost), and sit on the RP ID or below it.
 * https://www.w3.org/TR/webauthn-3/#sctn-validating-origin
 */
import { checkRpId } from './check-rp-id.ts';
import type { Finding, PoolCheck } from './finding.ts';
import { isSameOrSubdomain } from './hostnames.ts';

export const checkOrigins: PoolCheck = (pool, server, file) => {
  const { id: rpId, origins } = pool.passkeys.rp;
  // Against an invalid RP ID every origin would be "outside" it: report the RP ID alone.
  const rpIdValid = checkRpId(pool, server, file).length === 0;
  const findings: Finding[] = [];

  origins.forEach((origin, index) => {
    const problem = describeOriginProblem(origin, rpIdValid ? rpId : undefined);
    if (problem) findings.push({ path: ['passkeys', 'rp', 'origins', index], message: problem });
  });
  return findings;
};

/** The hosted pages run their ceremonies at the public URL; without it they cannot work. */
export const checkHostedOrigin: PoolCheck = (pool, server) => {
  if (pool.passkeys.rp.origins.includes(server.public_url)) return [];
  return [
    {
      path: ['passkeys', 'rp', 'origins'],
      message: `must include public_url "${server.public_url}", where the hosted sign-in pages run their ceremonies`,
    },
  ];
};

function describeOriginProblem(origin: string, rpId: string | undefined): string | undefined {
  if (origin.includes('*')) return `"${origin}" has a wildcard; list each origin exactly`;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return `"${origin}" is not a URL; write scheme://host[:port]`;
  }
  if (url.origin === 'null' || url.origin !== origin) {
    const suggestion = url.origin !== 'null' ? ` (did you mean "${url.origin}"?)` : '';
    return `"${origin}" must be exactly scheme://host[:port], without path, query or trailing slash${suggestion}`;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && url.hostname === 'localhost')) {
    return `"${origin}" must use https (http is allowed only for localhost)`;
  }
  if (rpId !== undefined && !isSameOrSubdomain(url.hostname, rpId)) {
    return `host "${url.hostname}" is not the RP ID "${rpId}" or a subdomain of it`;
  }
  return undefined;
}
