/**
 * The box that seals users' TOTP secrets at rest: the login flow opens them to
 * check a code, self-service seals new ones, so both derive it here the same
 * way. A copy of the database alone holds no working secret.
 */
import { createSecretBox, type SecretBox } from './secret-box.ts';

export function totpSecretBox(secret: string): SecretBox {
  return createSecretBox(secret, 'totp-secrets');
}
