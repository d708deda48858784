/**
 * The box that seals the pools' signing keys at rest. The server (pools/)
 * opens keys with it and `postern keys rotate` seals new ones, so both must
 * derive it the same way; it lives here, apart from the pool registry, so the
 * command does not load oidc-provider to get it.
 */
import { createSecretBox, type SecretBox } from './secret-box.ts';

/** The signing-key box for the operator secret (POSTERN_SECRET or the embedded one). */
export function signingKeyBox(secret: string): SecretBox {
  return createSecretBox(secret, 'signing-key-encryption');
}
