/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2) from a
 * browser that is signed in to nothing, answered without oidc-provider so
 * that it stores nothing (issue 8, item 5).
 *
 * oidc-provider's logout keeps the logout form's CSRF secret in the browser's
 * session: for a browser without one it creates a session just to hold that
 * secret, saves it, and posts the form back to itself (lib/actions/end_session.js).
 * Every anonymous `GET /session/end` thus stored a session, and a script could
 * store as many as it sent requests. There is nobody to sign out here, so
 * there is no form to protect: the answer is where oidc-provider's own flow
 * would end, at once.
 *
 * - The app's `post_logout_redirect_uri` is followed only when oidc-provider
 *   would follow it: the client named by `client_id`, or by the audience of an
 *   `id_token_hint` that oidc-provider validates (signature, issuer, `sub`;
 *   expiry ignored, as it does), has it registered, exactly. `state` goes
 *   with it.
 * - Anything else (no client, an unknown one, an unregistered URI, a hint that
 *   does not verify or names another client than `client_id`, a repeated
 *   parameter) is no reason to send the browser anywhere: it gets the
 *   signed-out page, as from oidc-provider's flow without a redirect URI.
 *
 * A browser with a signed-in session goes to oidc-provider's flow unchanged
 * (confirmation page, then its grants revoked and its session destroyed).
 */
import type { ParameterizedContext } from 'koa';
import type { Client, Provider } from 'oidc-provider';

/** The parameters of oidc-provider's end_session endpoint that decide where the browser goes. */
const PARAMETERS = ['id_token_hint', 'post_logout_redirect_uri', 'state', 'client_id'] as const;

export interface AnonymousLogoutOptions {
  /** The signed-out page, naming the app when one is known. */
  signedOut(clientName: string | undefined): string;
}

/**
 * Answers a logout request (GET or HEAD `/session/end`) when the browser has
 * no signed-in session of this provider.
 * @returns false when the browser is signed in: oidc-provider's logout must run.
 */
export async function answerAnonymousLogout(
  provider: Provider,
  ctx: ParameterizedContext,
  { signedOut }: AnonymousLogoutOptions,
): Promise<boolean> {
  // Read as oidc-provider reads it: the signed session cookie, then the stored session; nothing is saved.
  const session = await provider.Session.get(ctx);
  if (session.accountId) return false;

  const client = await clientOf(provider, ctx.query);
  const redirectUri = ctx.query.post_logout_redirect_uri;
  const state = ctx.query.state;
  ctx.set('Cache-Control', 'no-store');
  if (client && typeof redirectUri === 'string' && client.postLogoutRedirectUriAllowed(redirectUri)) {
    const target = new URL(redirectUri);
    if (typeof state === 'string') target.searchParams.set('state', state);
    ctx.status = 303;
    ctx.redirect(target.href);
    return true;
  }
  ctx.status = 200;
  ctx.type = 'html';
  ctx.body = signedOut(client ? (client.clientName ?? client.clientId) : undefined);
  return true;
}

/**
 * The client the request names, validated as oidc-provider's endSessionChecks
 * does; undefined when it names none or anything about it is in doubt.
 */
async function clientOf(
  provider: Provider,
  query: ParameterizedContext['query'],
): Promise<Client | undefined> {
  if (PARAMETERS.some((name) => Array.isArray(query[name]))) return undefined;
  const { id_token_hint: hint, client_id: clientId } = query as Record<string, string | undefined>;
  try {
    if (hint !== undefined) {
      const audience = audienceOf(hint);
      if (audience === undefined || (clientId !== undefined && clientId !== audience)) return undefined;
      const client = await provider.Client.find(audience);
      if (!client) return undefined;
      await provider.IdToken.validate(hint, client);
      return client;
    }
    return clientId === undefined ? undefined : await provider.Client.find(clientId);
  } catch {
    // An unknown client or a hint that does not verify: no redirect.
    return undefined;
  }
}

/** The `aud` of a JWT, read without verifying it (IdToken.validate verifies it next). */
function audienceOf(jwt: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      aud?: unknown;
    };
    return typeof payload.aud === 'string' ? payload.aud : undefined;
  } catch {
    return undefined;
  }
}
