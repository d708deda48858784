/**
 * A user's TOTP secret as stored: sealed with the operator secret
 * (src/secrets/totp-box.ts) and bound to its pool and user, so a sealed value
 * copied onto another user's row opens for no one.
 */
import type { SecretBox } from '../../secrets/secret-box.ts';

const boundTo = (poolId: string, userId: string) => `totp:${poolId}:${userId}`;

export const sealTotpSecret = (box: SecretBox, poolId: string, userId: string, secret: string) =>
  box.seal(secret, boundTo(poolId, userId));

export const openTotpSecret = (box: SecretBox, poolId: string, userId: string, sealed: string) =>
  box.open(sealed, boundTo(poolId, userId));
