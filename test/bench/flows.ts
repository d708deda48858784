/**
 * The flows the bench repeats, hop by hop, against Postern or the bare
 * oidc-provider (a `Target` says where each one lives):
 *
 * - Postern sign-in (usernameless passkey): GET /auth (PKCE) → 303 to the
 *   interaction page → GET page → GET state → POST passkey/options → the soft
 *   authenticator signs → POST passkey/verify → GET its redirect_to
 *   (/auth/{uid}) → 303 to the redirect URI with ?code → POST /token.
 * - Bare sign-in (auto-login): GET /auth → GET /interaction/{uid} (logs in at
 *   once) → GET /auth/{uid} → 303 with ?code → POST /token.
 * - Refresh (rotating: each call spends the token the previous one returned)
 *   and client_credentials, from the relying app's server.
 * - An authorization request alone, which leaves one live interaction.
 *
 * The browser hops run on a fresh BenchBrowser (own cookies, connection and
 * source address); the token endpoint is called over the relying app's
 * shared keep-alive agent, as its server would.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Agent } from 'node:http';
import type { SoftAuthenticator } from '../support/soft-authenticator.ts';
import { BenchBrowser, type BenchResponse } from './bench-browser.ts';

export interface OAuthClient {
  id: string;
  secret: string;
}

export interface Target {
  name: 'postern' | 'bare';
  /** Where the server listens; requests connect here. */
  connectHost: string;
  /** The public origin (http://localhost:PORT): Host headers, WebAuthn origin. */
  origin: string;
  /** The issuer: {origin}/{pool} for Postern, the origin for the bare provider. */
  issuer: string;
  web: OAuthClient & { redirectUri: string };
  machine: OAuthClient & { scope: string };
  /** The relying app's server: one keep-alive agent for every token call. */
  rpAgent: Agent;
}

/** A signed-up user and the authenticator holding their passkey. */
export interface BenchUser {
  email: string;
  authenticator: SoftAuthenticator;
}

export interface Tokens {
  access_token: string;
  id_token?: string;
  refresh_token?: string;
}

export interface AuthorizationOptions {
  /** (Optional) Defaults to `openid email`. */
  scope?: string;
  /** (Optional) e.g. `consent`, which a refresh token for offline_access needs. */
  prompt?: string;
}

/** Throws with the answer's status and body when it is not `status`. */
function expectStatus(response: BenchResponse, status: number, what: string): BenchResponse {
  if (response.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${response.status} ${response.body.slice(0, 200)}`);
  }
  return response;
}

function basic({ id, secret }: OAuthClient): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** GET /auth with PKCE; resolves with where it sends the browser and the code verifier. */
async function authorize(browser: BenchBrowser, target: Target, options: AuthorizationOptions = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${target.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: target.web.id,
    redirect_uri: target.web.redirectUri,
    response_type: 'code',
    scope: options.scope ?? 'openid email',
    state: randomBytes(16).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...(options.prompt ? { prompt: options.prompt } : {}),
  }).toString();
  const response = expectStatus(await browser.send(url), 303, 'GET /auth');
  return { next: new URL(String(response.headers.location), url), verifier };
}

/** Follows redirects on the server's origin and returns the redirect to the app (its ?code). */
async function followToCallback(browser: BenchBrowser, target: Target, start: URL): Promise<URL> {
  let url = start;
  for (let hops = 0; hops < 5; hops++) {
    const response = await browser.send(url);
    const location = response.headers.location;
    if (response.status < 300 || response.status >= 400 || !location) {
      throw new Error(
        `GET ${url.pathname}: expected a redirect, got ${response.status} ${response.body.slice(0, 200)}`,
      );
    }
    const next = new URL(location, url);
    if (next.origin !== target.origin) {
      if (!next.searchParams.get('code'))
        throw new Error(`no code in the redirect to the app: ${next.search}`);
      return next;
    }
    url = next;
  }
  throw new Error('too many redirects before the app');
}

/** POST /token from the relying app's server (client_secret_basic). */
async function tokenRequest(
  target: Target,
  client: OAuthClient,
  form: Record<string, string>,
): Promise<Tokens> {
  const backchannel = new BenchBrowser({ connectHost: target.connectHost, agent: target.rpAgent });
  const response = await backchannel.send(new URL(`${target.issuer}/token`), {
    method: 'POST',
    headers: {
      authorization: basic(client),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams(form).toString(),
  });
  const tokens = JSON.parse(expectStatus(response, 200, `POST /token (${form.grant_type})`).body) as Tokens;
  if (!tokens.access_token) throw new Error(`POST /token (${form.grant_type}): no access token`);
  return tokens;
}

function redeemCode(target: Target, callback: URL, verifier: string): Promise<Tokens> {
  return tokenRequest(target, target.web, {
    grant_type: 'authorization_code',
    code: callback.searchParams.get('code') ?? '',
    redirect_uri: target.web.redirectUri,
    code_verifier: verifier,
  });
}

async function interactionJson(
  browser: BenchBrowser,
  target: Target,
  url: URL,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const response = await browser.send(
    url,
    body === undefined
      ? { headers: { accept: 'application/json' } }
      : {
          method: 'POST',
          headers: { accept: 'application/json', 'content-type': 'application/json', origin: target.origin },
          body: JSON.stringify(body),
        },
  );
  return JSON.parse(
    expectStatus(response, 200, `${body === undefined ? 'GET' : 'POST'} ${url.pathname}`).body,
  ) as Record<string, unknown>;
}

/**
 * One usernameless passkey sign-in at Postern, code redeemed.
 * @param hooks.onStep (Optional) Called after each hop with its name (the trace's step boundaries).
 */
export async function posternSignIn(
  target: Target,
  user: BenchUser,
  options: AuthorizationOptions = {},
  hooks: { onStep?: (step: string) => Promise<void> } = {},
): Promise<Tokens> {
  const step = hooks.onStep ?? (async () => {});
  const browser = new BenchBrowser({ connectHost: target.connectHost });
  try {
    const { next: page, verifier } = await authorize(browser, target, options);
    await step('GET /auth');
    expectStatus(await browser.send(page, { headers: { accept: 'text/html' } }), 200, 'GET interaction page');
    await step('GET /interaction/{uid} (page)');
    const state = await interactionJson(browser, target, new URL(`${page.href}/state`));
    if (!(state.methods as string[] | undefined)?.includes('passkey'))
      throw new Error(`state offers no passkey: ${JSON.stringify(state)}`);
    await step('GET …/state');
    const requestOptions = await interactionJson(
      browser,
      target,
      new URL(`${page.href}/passkey/options`),
      {},
    );
    await step('POST …/passkey/options');
    const assertion = user.authenticator.authenticate(requestOptions as never, target.origin);
    const verified = await interactionJson(browser, target, new URL(`${page.href}/passkey/verify`), {
      response: assertion,
    });
    if (typeof verified.redirect_to !== 'string')
      throw new Error(`passkey/verify: no redirect_to: ${JSON.stringify(verified).slice(0, 200)}`);
    await step('POST …/passkey/verify');
    const callback = await followToCallback(browser, target, new URL(verified.redirect_to));
    await step('GET /auth/{uid} (resume) → ?code');
    const tokens = await redeemCode(target, callback, verifier);
    await step('POST /token (code)');
    return tokens;
  } finally {
    browser.close();
  }
}

/**
 * Signs a new user up through the interaction API, as the hosted page would:
 * identify, the email code (read from the SMTP sink by `codeFor`), then a
 * discoverable passkey from `user.authenticator`. Used where the bench cannot
 * write users into the database itself (embedded PGlite belongs to Postern).
 */
export async function posternSignUp(
  target: Target,
  user: BenchUser,
  codeFor: (email: string) => Promise<string>,
): Promise<void> {
  const browser = new BenchBrowser({ connectHost: target.connectHost });
  try {
    const { next: page } = await authorize(browser, target);
    const call = (path: string, body: unknown) =>
      interactionJson(browser, target, new URL(`${page.href}/${path}`), body);
    await call('identify', { email: user.email });
    await call('email-otp/send', {});
    const verified = await call('email-otp/verify', { code: await codeFor(user.email) });
    if (verified.step !== 'enroll')
      throw new Error(`sign-up: expected enroll, got ${JSON.stringify(verified)}`);
    const creationOptions = await call('passkey/register/options', {});
    await call('passkey/register/verify', {
      response: user.authenticator.register(creationOptions as never, target.origin),
    });
  } finally {
    browser.close();
  }
}

/** One sign-in at the bare provider: its interaction logs in at once. */
export async function bareSignIn(target: Target, options: AuthorizationOptions = {}): Promise<Tokens> {
  const browser = new BenchBrowser({ connectHost: target.connectHost });
  try {
    const { next, verifier } = await authorize(browser, target, options);
    return await redeemCode(target, await followToCallback(browser, target, next), verifier);
  } finally {
    browser.close();
  }
}

/** A rotating refresh token chain: each use spends the token and keeps its successor. */
export interface RefreshChain {
  refreshToken: string;
}

export async function refreshOnce(target: Target, chain: RefreshChain): Promise<void> {
  const tokens = await tokenRequest(target, target.web, {
    grant_type: 'refresh_token',
    refresh_token: chain.refreshToken,
  });
  if (!tokens.refresh_token) throw new Error('refresh: no rotated refresh token');
  chain.refreshToken = tokens.refresh_token;
}

export async function clientCredentials(target: Target): Promise<void> {
  await tokenRequest(target, target.machine, {
    grant_type: 'client_credentials',
    scope: target.machine.scope,
  });
}

/** GET /auth alone: the server stores an interaction that stays live (30 minutes) for nobody. */
export async function authorizeOnly(target: Target): Promise<void> {
  const browser = new BenchBrowser({ connectHost: target.connectHost });
  try {
    await authorize(browser, target);
  } finally {
    browser.close();
  }
}

/**
 * Users checked out one flow at a time: two concurrent sign-ins with one
 * device-bound passkey would race on its signature counter, and the loser is
 * refused as a cloned key (as it should be), which would count as an error.
 */
export class UserPool {
  readonly #idle: BenchUser[];
  readonly #waiting: Array<(user: BenchUser) => void> = [];

  constructor(users: BenchUser[]) {
    this.#idle = [...users];
  }

  async take(): Promise<BenchUser> {
    const user = this.#idle.shift();
    if (user) return user;
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  give(user: BenchUser): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter(user);
    else this.#idle.push(user);
  }

  async with<T>(run: (user: BenchUser) => Promise<T>): Promise<T> {
    const user = await this.take();
    try {
      return await run(user);
    } finally {
      this.give(user);
    }
  }
}
