/**
 * The algorithms Postern signs tokens with: ES256, the default and cheapest
 * to sign, and RS256 for clients that need it. Each pool has a key for each
 * (./signing-keys.ts); oidc-provider signs ID tokens, userinfo and
 * introspection answers with them (./create-provider.ts), and a client's
 * file may pick one (src/config/schema.ts). Free of dependencies, so the
 * config schema names them without loading the OIDC stack.
 */
import type { SigningAlgorithm } from '../storage/types.ts';

export const SIGNING_ALGORITHMS = ['ES256', 'RS256'] as const satisfies readonly SigningAlgorithm[];

/** What a client's ID tokens are signed with when its file names nothing. */
export const DEFAULT_SIGNING_ALGORITHM = 'ES256' satisfies SigningAlgorithm;
