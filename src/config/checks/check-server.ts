/**
 * Server settings that depend on each other: the public URL is the issuer's
 * base and must be a secure origin; shared storage needs the secret that
 * protects signing keys; several processes need shared storage.
 */
import type { Finding, ServerCheck } from './finding.ts';
import { isLoopback } from './hostnames.ts';

export const checkServer: ServerCheck = (server) => {
  const findings: Finding[] = [];
  const publicUrlProblem = describePublicUrlProblem(server.public_url);
  if (publicUrlProblem) findings.push({ path: ['public_url'], message: publicUrlProblem });

  if (server.database.url !== undefined && server.secret === undefined) {
    findings.push({
      path: ['secret'],
      message:
        'is required when database.url is set (POSTERN_SECRET); it encrypts the signing keys stored there',
    });
  }
  if (server.workers > 1 && (server.database.url === undefined || server.redis.url === undefined)) {
    findings.push({
      path: ['workers'],
      message:
        'more than one worker needs database.url and redis.url; the embedded stores belong to one process',
    });
  }
  return findings;
};

function describePublicUrlProblem(publicUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(publicUrl);
  } catch {
    return `"${publicUrl}" is not a URL`;
  }
  if (url.origin === 'null' || url.origin !== publicUrl) {
    return `"${publicUrl}" must be exactly scheme://host[:port], without path or trailing slash`;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    return `"${publicUrl}" must use https (http is allowed only for localhost)`;
  }
  return undefined;
}
