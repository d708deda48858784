/**
 * The hosted account page (`/{pool}/account`) signs its user in like any
 * relying app would: a public, first-party client of its own pool, with PKCE
 * and an exact redirect URI. Postern adds it to every pool, so its id is
 * reserved in pool files.
 */
import { DEFAULT_SIGNING_ALGORITHM } from '../oidc/signing-algorithms.ts';
import type { ClientFile } from './schema.ts';
import type { PoolConfig } from './types.ts';

export const ACCOUNT_CLIENT_ID = 'postern-account';

export function accountPageUrl(issuer: string): string {
  return `${issuer}/account`;
}

export function withAccountClient(pool: PoolConfig): PoolConfig {
  const page = accountPageUrl(pool.issuer);
  const client: ClientFile = {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'your account',
    token_endpoint_auth_method: 'none',
    redirect_uris: [page],
    post_logout_redirect_uris: [page],
    grant_types: ['authorization_code'],
    scope: 'openid email',
    id_token_signed_response_alg: DEFAULT_SIGNING_ALGORITHM,
    first_party: true,
  };
  return { ...pool, clients: [...pool.clients, client] };
}
