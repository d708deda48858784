/**
 * The demo relying app served at `/` when the configuration has a `demo`
 * pool with a `demo-app` client: "Sign in with Postern" runs a real code +
 * PKCE flow (openid-client) against the demo pool and shows the ID token's
 * claims, so a newcomer sees what a relying app receives (amr, acr, auth_time).
 *
 * It is an ordinary relying party living in the same process: it reaches the
 * issuer over HTTP at public_url like any other app would. Its state (PKCE
 * verifier, state, nonce, the ID token for logout) lives in signed cookies.
 */
import type Router from '@koa/router';
import * as client from 'openid-client';
import type { Config } from '../config/types.ts';
import { PosternError, relayedCode } from '../errors.ts';
import type { Render } from '../http/render.ts';

interface DemoSession {
  claims: Record<string, unknown>;
  email?: string;
  idToken?: string;
}

const FLOW_COOKIE = 'postern.demo-app.flow';
const SESSION_COOKIE = 'postern.demo-app.session';

export function demoAppIsConfigured(config: Config): boolean {
  return config.pools.some(
    (pool) => pool.id === 'demo' && pool.clients.some((candidate) => candidate.client_id === 'demo-app'),
  );
}

export function addDemoAppRoutes(
  router: Router,
  { config, render }: { config: Config; render: Render },
): void {
  const publicUrl = config.server.public_url;
  const issuer = new URL(`${publicUrl}/demo`);
  const redirectUri = `${publicUrl}/callback`;
  // From public_url, not the request: behind a TLS proxy Koa may see http (app.ts lets Koa set it).
  const secure = publicUrl.startsWith('https:');
  let discovered: Promise<client.Configuration> | undefined;

  const configuration = () => {
    discovered ??= client
      .discovery(issuer, 'demo-app', undefined, client.None(), {
        execute: issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [],
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw new PosternError(502, 'demo_unavailable', 'The demo app could not reach the demo pool.', {
          detail: String(error),
          cause: error,
        });
      });
    return discovered;
  };
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, signed: true, secure, path: '/' };

  router.get('/', (ctx) => {
    const cookie = ctx.cookies.get(SESSION_COOKIE, { signed: true });
    const session = cookie
      ? (JSON.parse(Buffer.from(cookie, 'base64url').toString()) as DemoSession)
      : undefined;
    ctx.type = 'html';
    ctx.body = render('demo/home', {
      claims: session?.claims,
      email: session?.email,
      claimsJson: session ? JSON.stringify(session.claims, null, 2) : undefined,
      issuer: issuer.href,
    });
  });

  router.get('/signin', async (ctx) => {
    const rp = await configuration();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(rp, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(ctx.query.acr_values === 'phr' || ctx.query.acr_values === 'phrh'
        ? { acr_values: ctx.query.acr_values }
        : {}),
      ...(ctx.query.prompt === 'login' ? { prompt: 'login' } : {}),
    });
    ctx.cookies.set(
      FLOW_COOKIE,
      Buffer.from(JSON.stringify({ verifier, state, nonce })).toString('base64url'),
      {
        ...cookieOptions,
        maxAge: 30 * 60 * 1000,
      },
    );
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const flow = ctx.cookies.get(FLOW_COOKIE, { signed: true });
    if (!flow)
      throw new PosternError(
        400,
        'invalid_request',
        'This sign-in did not start here, or took too long. Start again.',
      );
    const { verifier, state, nonce } = JSON.parse(Buffer.from(flow, 'base64url').toString()) as Record<
      string,
      string
    >;
    ctx.cookies.set(FLOW_COOKIE, null, cookieOptions);
    const rp = await configuration();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(rp, new URL(ctx.originalUrl, publicUrl), {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
      });
    } catch (error) {
      const { error: code, error_description } = error as { error?: string; error_description?: string };
      throw new PosternError(
        400,
        code === undefined ? 'invalid_request' : relayedCode(code),
        error_description ?? 'The sign-in did not complete.',
        {
          cause: error,
        },
      );
    }
    const claims: Record<string, unknown> = tokens.claims() ?? {};
    // The ID token proves the sign-in; profile claims such as email come from userinfo.
    const userinfo = await client.fetchUserInfo(rp, tokens.access_token, String(claims.sub));
    const session: DemoSession = { claims, email: userinfo.email, idToken: tokens.id_token };
    ctx.cookies.set(SESSION_COOKIE, Buffer.from(JSON.stringify(session)).toString('base64url'), {
      ...cookieOptions,
      maxAge: 60 * 60 * 1000,
    });
    ctx.redirect('/');
  });

  router.get('/signout', async (ctx) => {
    const session = ctx.cookies.get(SESSION_COOKIE, { signed: true });
    ctx.cookies.set(SESSION_COOKIE, null, cookieOptions);
    const idToken = session
      ? (JSON.parse(Buffer.from(session, 'base64url').toString()).idToken as string | undefined)
      : undefined;
    const rp = await configuration();
    ctx.redirect(
      client.buildEndSessionUrl(rp, {
        post_logout_redirect_uri: `${publicUrl}/`,
        ...(idToken ? { id_token_hint: idToken } : {}),
      }).href,
    );
  });
}
