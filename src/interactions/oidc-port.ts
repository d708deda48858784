/**
 * What the login use cases need from the OpenID provider, and nothing more:
 * the interaction as plain data, and four ways to act on it. The use cases
 * never hold oidc-provider's objects, so they run (and are tested) without a
 * provider; src/oidc/interaction-port.ts implements the port over one.
 */

/** The interaction a request belongs to, as the login reads it. */
export interface InteractionView {
  uid: string;
  params: Record<string, unknown>;
  /** The prompt oidc-provider needs met: `login`, or `consent` for a session that only lacks it. */
  prompt: { name: string };
  /** The browser's session, when it is signed in. */
  session?: { accountId?: string; uid?: string };
  /** The grant the client already has for this account, if any. */
  grantId?: string;
  /** Epoch seconds when the interaction expires. */
  exp: number;
}

/** A completed login, as the ID token will state it. */
export interface LoginResult {
  accountId: string;
  amr: string[];
  acr: string;
  /** Epoch seconds: when the user last proved something (auth_time). */
  ts: number;
  /** The organization the login was for: its tokens name it (`org_id`, `org_name`). */
  organizationId?: string;
}

/** The consent that goes with a finished interaction: a grant given here, or implied (first-party). */
export type ConsentResult = { grantId: string } | { implied: true } | undefined;

export interface OidcPort {
  /** Ends the interaction with a login. Returns where the browser goes. */
  finishLogin(login: LoginResult, consent: ConsentResult): Promise<string>;
  /** Ends an interaction that only asked for consent. Returns where the browser goes. */
  finishConsent(consent: ConsentResult): Promise<string>;
  /** Ends the interaction with an OAuth error for the client. Returns where the browser goes. */
  deny(error: 'access_denied' | 'unmet_authentication_requirements', description: string): Promise<string>;
  /**
   * Grants the account exactly what this request asks for, within what the
   * client may ask (the client's existing grant is widened, never replaced;
   * `fresh`: a new grant instead, for a login of another organization than
   * the existing grant's). Returns the grant's id.
   */
  grantConsent(accountId: string, options?: { fresh?: boolean }): Promise<string>;
}
