/**
 * Client registrations that oidc-provider would accept but that are unsafe
 * or cannot work: duplicate ids, non-exact or insecure redirect URIs
 * (RFC 9700 §2.1, §4.1.1), confidential clients without a secret, grants a
 * public client cannot use, and a secret published with Postern (the demo
 * pool's defaults) on a server other people can reach.
 */
import { ACCOUNT_CLIENT_ID } from '../account-client.ts';
import type { Finding, PoolCheck } from './finding.ts';
import { isLoopback } from './hostnames.ts';

/** How the shipped config marks a default secret: it is in the repository, so anyone knows it. */
const PUBLISHED_SECRET = /for-local-development-only$/;

export const checkClients: PoolCheck = (pool, server) => {
  const findings: Finding[] = [];
  const reachable = !isLoopback(new URL(server.public_url).hostname);
  const seen = new Map<string, number>();

  pool.clients.forEach((client, index) => {
    const at = (...path: Array<string | number>) => ['clients', index, ...path];
    const first = seen.get(client.client_id);
    if (client.client_id === ACCOUNT_CLIENT_ID) {
      findings.push({
        path: at('client_id'),
        message: `"${ACCOUNT_CLIENT_ID}" is reserved for Postern's account page; choose another id`,
      });
    } else if (first !== undefined) {
      findings.push({
        path: at('client_id'),
        message: `"${client.client_id}" is already the id of clients[${first}]`,
      });
    } else {
      seen.set(client.client_id, index);
    }

    const isPublic = client.token_endpoint_auth_method === 'none';
    if (!isPublic && client.client_secret === undefined) {
      findings.push({
        path: at('client_secret'),
        message: `is required for ${client.token_endpoint_auth_method}; set it, or token_endpoint_auth_method: none for a public client`,
      });
    }
    if (reachable && client.client_secret !== undefined && PUBLISHED_SECRET.test(client.client_secret)) {
      findings.push({
        path: at('client_secret'),
        message: `is the secret published with Postern's demo, which anyone can use; set your own (e.g. the variable the file names) before serving on ${server.public_url}`,
      });
    }
    if (isPublic && client.client_secret !== undefined) {
      findings.push({
        path: at('client_secret'),
        message: 'a public client (token_endpoint_auth_method: none) has no secret',
      });
    }
    if (isPublic && client.grant_types.includes('client_credentials')) {
      findings.push({
        path: at('grant_types'),
        message: 'client_credentials needs a confidential client with a secret',
      });
    }
    if (client.grant_types.includes('authorization_code') && client.redirect_uris.length === 0) {
      findings.push({
        path: at('redirect_uris'),
        message: 'authorization_code needs at least one redirect URI',
      });
    }
    if (client.grant_types.includes('refresh_token') && !client.grant_types.includes('authorization_code')) {
      findings.push({
        path: at('grant_types'),
        message: 'refresh_token is only issued with authorization_code',
      });
    }

    for (const key of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
      client[key].forEach((uri, uriIndex) => {
        const problem = describeRedirectUriProblem(uri);
        if (problem) findings.push({ path: at(key, uriIndex), message: problem });
      });
    }
  });
  return findings;
};

function describeRedirectUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `"${uri}" is not an absolute URI`;
  }
  if (uri.includes('*')) return `"${uri}" has a wildcard; redirect URIs are matched exactly`;
  if (url.hash) return `"${uri}" must not have a fragment`;
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return undefined;
  return `"${uri}" must use https (http is allowed only for loopback hosts)`;
}
