/**
 * Where a user goes back to a relying app from Postern's pages: an expired or
 * cancelled sign-in, an error page. Only what the pool file registered is
 * linked (never a URL from the request), so a page cannot be made to send
 * its user somewhere the operator did not name.
 *
 * A client's app is the origin of its first web redirect URI (the app's own
 * site; the redirect URI itself is a callback that needs a code). The
 * account page's client returns to the account page.
 */
import { ACCOUNT_CLIENT_ID, accountPageUrl } from '../config/account-client.ts';
import type { PoolConfig } from '../config/types.ts';

/** A relying app a page can link back to. */
export interface AppLink {
  /** The client's name as users see it (client_name, else its id). */
  name: string;
  url: string;
}

type ClientOf<P extends PoolConfig> = P['clients'][number];

/** The app behind `clientId`, when it is a client of `pool` with a web address. */
export function appLinkOf(pool: PoolConfig, clientId: string): AppLink | undefined {
  const client = pool.clients.find((candidate) => candidate.client_id === clientId);
  return client ? linkOf(pool, client) : undefined;
}

/**
 * The pool's relying app when it has exactly one (its account page aside):
 * where a page that no longer knows its client (an expired sign-in) can
 * still send the user. Undefined when there are several, or none.
 */
export function soleAppLinkOf(pool: PoolConfig): AppLink | undefined {
  const links = pool.clients
    .filter(
      (client) => client.client_id !== ACCOUNT_CLIENT_ID && client.grant_types.includes('authorization_code'),
    )
    .map((client) => linkOf(pool, client))
    .filter((link): link is AppLink => link !== undefined);
  return links.length === 1 ? links[0] : undefined;
}

function linkOf(pool: PoolConfig, client: ClientOf<PoolConfig>): AppLink | undefined {
  const name = client.client_name ?? client.client_id;
  if (client.client_id === ACCOUNT_CLIENT_ID) return { name, url: accountPageUrl(pool.issuer) };
  for (const uri of client.redirect_uris) {
    // Native apps' custom schemes (com.example.app:/cb) have no page to link to.
    const url = URL.canParse(uri) ? new URL(uri) : undefined;
    if (url && (url.protocol === 'https:' || url.protocol === 'http:'))
      return { name, url: `${url.origin}/` };
  }
  return undefined;
}
