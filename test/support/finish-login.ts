/**
 * Completes an interaction the way the login flow does, without the login UI:
 * for issue-2 tests of the token machinery (codes, refresh, revocation) that
 * need a signed-in user but are not about how they signed in.
 */
import type Provider from 'oidc-provider';

export async function finishLogin(
  provider: Provider,
  uid: string,
  { accountId, amr = ['otp'], acr = '0' }: { accountId: string; amr?: string[]; acr?: string },
): Promise<string> {
  const interaction = await provider.Interaction.find(uid);
  if (!interaction) throw new Error(`no interaction ${uid}`);
  const clientId = String(interaction.params.client_id);
  const grant = new provider.Grant({ accountId, clientId });
  grant.addOIDCScope(String(interaction.params.scope));
  const grantId = await grant.save();
  interaction.result = { login: { accountId, amr, acr }, consent: { grantId } };
  await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  return interaction.returnTo;
}
