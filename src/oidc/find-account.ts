/**
 * oidc-provider's `findAccount`: a user of this pool, and the claims each
 * scope releases (openid: sub; email: email, email_verified; profile: name).
 * `acr`, `amr` and `auth_time` come from the login, not from here.
 */
import type { Account } from 'oidc-provider';
import type { UserRepository } from '../storage/types.ts';

export type AccountLookup = Pick<UserRepository, 'findById'>;

/**
 * The account of a login that just finished in this pool's interaction, at
 * the `resume` step: its user was loaded by the factor a moment ago, so it
 * is not looked up again here. Nothing at resume reads its claims (the code
 * flow puts none in the authorization response); if anything did, they are
 * loaded then. The token endpoint still looks the account up, so a user gone
 * in between gets no tokens.
 */
export function accountOfFinishedLogin(users: AccountLookup, poolId: string, sub: string): Account {
  return {
    accountId: sub,
    claims: async (...args) => {
      const account = await findAccount(users, poolId, sub);
      if (!account) throw new Error(`account ${sub} vanished during the sign-in`);
      return account.claims(...args);
    },
  };
}

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
