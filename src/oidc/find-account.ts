/**
 * oidc-provider's `findAccount`: a user of this pool, and the claims each
 * scope releases (openid: sub; email: email, email_verified; profile: name).
 * `acr`, `amr` and `auth_time` come from the login, not from here.
 */
import type { Account } from 'oidc-provider';
import type { UserRepository } from '../storage/types.ts';

export type AccountLookup = Pick<UserRepository, 'findById'>;

export async function findAccount(
  users: AccountLookup,
  poolId: string,
  sub: string,
): Promise<Account | undefined> {
  const user = await users.findById(poolId, sub);
  if (!user) return undefined;
  return {
    accountId: user.id,
    claims: () => ({
      sub: user.id,
      email: user.email,
      email_verified: user.emailVerified,
      ...(user.name ? { name: user.name } : {}),
    }),
  };
}
