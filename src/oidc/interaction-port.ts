/**
 * The login's oidc port (src/interactions/oidc-port.ts) over one
 * oidc-provider interaction: results are saved on the interaction, for the
 * provider to act on when the browser resumes the authorization request;
 * consent widens the client's grant (./widen-grant.ts, the one place grants
 * grow).
 */
import type { Interaction, Provider } from 'oidc-provider';
import type { ConsentResult, OidcPort } from '../interactions/oidc-port.ts';
import { widenGrant } from './widen-grant.ts';

export function createInteractionPort(
  provider: Provider,
  interaction: Interaction,
  /** The scopes the client may ask for (its pool file's `scope`). */
  { allowedScope }: { allowedScope: string },
): OidcPort {
  const ttl = () => Math.max(1, interaction.exp - Math.floor(Date.now() / 1000));
  const consentOf = (consent: ConsentResult) => {
    if (!consent) return {};
    return { consent: 'grantId' in consent ? { grantId: consent.grantId } : {} };
  };
  const save = async (result: Interaction['result']) => {
    interaction.result = result;
    await interaction.save(ttl());
    return interaction.returnTo;
  };

  return {
    finishLogin: ({ organizationId, ...login }, consent) =>
      save({
        login: { ...login, remember: true },
        ...consentOf(consent),
        // Not oidc-provider's: read back at resume, when the grant is loaded (./organization-grants.ts).
        ...(organizationId ? { organization: { id: organizationId } } : {}),
      }),
    finishConsent: (consent) => save(consentOf(consent)),
    deny: (error, description) => save({ error, error_description: description }),
    async grantConsent(accountId, { fresh = false } = {}) {
      const { Grant } = provider;
      const existing = interaction.grantId && !fresh ? await Grant.find(interaction.grantId) : undefined;
      const grant = existing ?? new Grant({ accountId, clientId: String(interaction.params.client_id) });
      widenGrant(grant, {
        scope: interaction.params.scope,
        claims: interaction.params.claims,
        allowedScope,
      });
      return grant.save();
    },
  };
}
