/**
 * What tests of "signing out everywhere else" (issue 8, item 2) check about a
 * browser signed in as the user with the pool's first-party `web` client: can
 * its refresh token still refresh, its access token still open userinfo, its
 * session still sign in silently (prompt=none)?
 */
import * as oidc from 'openid-client';
import type { Browserless } from '../../support/browserless.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { REDIRECT } from '../login/login-fixture.ts';

/** One browser signed in as the user: its cookie jar (the session) and its tokens, a refresh token too. */
export interface BrowserSignIn {
  browser: Browserless;
  access: string;
  refresh: string;
}

export const SIGNED_IN = { refresh: 'ok', userinfo: 'ok', silent: 'code' } as const;
export const SIGNED_OUT = {
  refresh: 'invalid_grant',
  userinfo: 'invalid_token',
  silent: 'login_required',
} as const;

/** openid-client for the pool's first-party public client `web`. */
async function relyingParty(server: TestServer, poolId: string) {
  const config = await oidc.discovery(new URL(server.issuer(poolId)), 'web', undefined, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
  oidc.enableNonRepudiationChecks(config);
  return config;
}

/**
 * Starts a login of `web` in `browser` that asks for a refresh token:
 * offline_access counts only with prompt=consent (OIDC Core §11).
 */
export function startOffline(
  server: TestServer,
  poolId: string,
  browser: Browserless,
  params: Record<string, string> = {},
) {
  return InteractionClient.start(server, {
    poolId,
    clientId: 'web',
    redirectUri: REDIRECT,
    scope: 'openid email offline_access',
    params: { prompt: 'consent', ...params },
    browser,
  });
}

/** Follows the login's `redirect_to`, redeems the code and returns the browser's sign-in. */
export async function tokensOf(
  login: InteractionClient,
  redirectTo: unknown,
  browser: Browserless,
): Promise<BrowserSignIn> {
  if (typeof redirectTo !== 'string') throw new Error(`no redirect_to: ${JSON.stringify(redirectTo)}`);
  const { tokens } = await login.finish(redirectTo);
  if (!tokens.refresh_token) throw new Error('no refresh token');
  return { browser, access: tokens.access_token, refresh: tokens.refresh_token };
}

/** prompt=none in `browser`: `code` while its session still signs in silently, else the error code. */
async function silently(server: TestServer, poolId: string, browser: Browserless) {
  const url = new URL(`${server.issuer(poolId)}/auth`);
  for (const [key, value] of Object.entries({
    client_id: 'web',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid',
    prompt: 'none',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  })) {
    url.searchParams.set(key, value);
  }
  const response = await browser.follow(url, { origin: new URL(server.url).origin });
  const back = new URL(response.headers.get('location') ?? '');
  return back.searchParams.get('code') ? 'code' : back.searchParams.get('error');
}

/**
 * What `signIn` can still do: `ok` or the refresh error, `ok` or the userinfo
 * challenge's error, `code` or the prompt=none error. A successful refresh
 * rotates the token; `signIn.refresh` then holds the new one.
 */
export async function whatStillWorks(server: TestServer, poolId: string, signIn: BrowserSignIn) {
  const rp = await relyingParty(server, poolId);
  const refresh = await oidc.refreshTokenGrant(rp, signIn.refresh).then(
    (tokens) => {
      signIn.refresh = tokens.refresh_token ?? signIn.refresh;
      return 'ok';
    },
    (error: { error?: string }) => error.error ?? 'failed',
  );
  const userinfo = await fetch(rp.serverMetadata().userinfo_endpoint ?? '', {
    headers: { authorization: `Bearer ${signIn.access}` },
  });
  const challenge = userinfo.headers.get('www-authenticate') ?? '';
  return {
    refresh,
    userinfo: userinfo.status === 200 ? 'ok' : (/error="([a-z_]+)"/.exec(challenge)?.[1] ?? userinfo.status),
    silent: await silently(server, poolId, signIn.browser),
  };
}
