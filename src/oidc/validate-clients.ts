/**
 * Runs oidc-provider's own client metadata validation over a pool's clients,
 * so `check-config` and boot reject what the token endpoint would reject later
 * (STYLE.md rule 8: fail at boot, not at request time).
 */
import type Provider from 'oidc-provider';
import type { PoolConfig } from '../config/types.ts';
import type { OidcModelStore } from '../storage/types.ts';
import { createProvider, toClientMetadata } from './create-provider.ts';
import { SIGNING_ALGORITHMS } from './signing-algorithms.ts';
import { newPrivateKey, type PrivateJwk } from './signing-keys.ts';

export interface ClientProblem {
  index: number;
  message: string;
}

export async function validateClients(provider: Provider, pool: PoolConfig): Promise<ClientProblem[]> {
  const problems: ClientProblem[] = [];
  for (const [index, client] of pool.clients.entries()) {
    try {
      await provider.Client.validate(toClientMetadata(client));
    } catch (error) {
      const { error_description, message } = error as { error_description?: string; message?: string };
      problems.push({ index, message: `oidc-provider refuses this client: ${error_description ?? message}` });
    }
  }
  return problems;
}

/**
 * Validates a pool's clients without storage: a provider with the pool's real
 * configuration, throwaway keys, and stores that are never called. It gets a
 * key for every algorithm a pool signs with, as serve does: oidc-provider
 * refuses a client whose id_token_signed_response_alg no key can sign.
 */
export async function validatePoolClients(pool: PoolConfig): Promise<ClientProblem[]> {
  const refuse = () => Promise.reject(new Error('storage is not available while validating clients'));
  const unused = new Proxy({} as OidcModelStore, { get: () => refuse });
  const provider = createProvider({
    pool,
    stores: {
      durable: { oidcModels: () => unused, rotateRefreshToken: refuse },
      ephemeral: { oidcModels: () => unused },
    },
    accounts: { findById: async () => undefined },
    organizations: {
      find: async () => undefined,
      listForUser: async () => [],
      organizationOfGrant: async () => undefined,
      setGrantOrganization: async () => false,
    },
    sessions: { get: async () => undefined, set: async () => {} },
    jwks: { keys: validationKeys() },
    cookieKeys: ['validation-only'],
    pages: { error: () => '', logout: () => '', logoutSuccess: () => '' },
    onServerError: () => {},
  });
  return validateClients(provider, pool);
}

let keys: PrivateJwk[] | undefined;

/** One throwaway key per signing algorithm, made once per process (an RSA key takes a moment). */
function validationKeys(): PrivateJwk[] {
  keys ??= SIGNING_ALGORITHMS.map((alg) => ({
    ...newPrivateKey(alg).export({ format: 'jwk' }),
    kid: `validation-${alg}`,
    alg,
    use: 'sig',
  })) as PrivateJwk[];
  return keys;
}
