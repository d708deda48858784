/**
 * Drives one login through the JSON interaction API, as a relying app's own
 * screens would: starts an authorization request (PKCE), calls the API with
 * the interaction cookie, follows `redirect_to` back to the app, and redeems
 * the code with openid-client.
 */
import * as client from 'openid-client';
import { Browserless } from './browserless.ts';
import type { TestServer } from './postern-server.ts';

export interface ApiResult<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export interface StartOptions {
  poolId: string;
  clientId: string;
  redirectUri: string;
  /** (Optional) Defaults to `openid email`. */
  scope?: string;
  /** (Optional) Extra authorization parameters (prompt, acr_values, …). */
  params?: Record<string, string>;
  /** (Optional) Reuse a browser (its session cookie), e.g. for a second login. */
  browser?: Browserless;
}

export class InteractionClient {
  readonly browser: Browserless;
  readonly server: TestServer;
  readonly uid: string;
  readonly base: string;
  readonly #verifier: string;
  readonly #state: string;
  readonly #options: StartOptions;

  private constructor(
    server: TestServer,
    browser: Browserless,
    uid: string,
    options: StartOptions,
    verifier: string,
    state: string,
  ) {
    this.server = server;
    this.browser = browser;
    this.uid = uid;
    this.base = `${server.url}/${options.poolId}/interaction/${uid}`;
    this.#options = options;
    this.#verifier = verifier;
    this.#state = state;
  }

  static async start(server: TestServer, options: StartOptions): Promise<InteractionClient> {
    const browser = options.browser ?? new Browserless();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = new URL(`${server.issuer(options.poolId)}/auth`);
    for (const [key, value] of Object.entries({
      client_id: options.clientId,
      redirect_uri: options.redirectUri,
      response_type: 'code',
      scope: options.scope ?? 'openid email',
      state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...options.params,
    })) {
      url.searchParams.set(key, value);
    }
    const response = await browser.fetch(url);
    const location = response.headers.get('location') ?? '';
    const uid = /\/interaction\/([^/?]+)$/.exec(location)?.[1];
    if (response.status !== 303 || !uid) throw new Error(`no interaction: ${response.status} ${location}`);
    return new InteractionClient(server, browser, uid, options, verifier, state);
  }

  async get<T = Record<string, unknown>>(path: string): Promise<ApiResult<T>> {
    const response = await this.browser.fetch(`${this.base}${path}`, {
      headers: { accept: 'application/json' },
    });
    return { status: response.status, body: (await response.json()) as T };
  }

  async post<T = Record<string, unknown>>(path: string, json: unknown = {}): Promise<ApiResult<T>> {
    const response = await this.browser.fetch(`${this.base}${path}`, { method: 'POST', json });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as T };
  }

  state = () => this.get('/state');
  identify = (email: string) => this.post('/identify', { email });
  passkeyOptions = () => this.post<PublicKeyCredentialRequestOptionsJSONLike>('/passkey/options');
  passkeyVerify = (response: unknown) => this.post('/passkey/verify', { response });
  registerOptions = (body: { name?: string } = {}) =>
    this.post<PublicKeyCredentialCreationOptionsJSONLike>('/passkey/register/options', body);
  registerVerify = (response: unknown, name?: string) =>
    this.post('/passkey/register/verify', name === undefined ? { response } : { response, name });
  sendCode = (email?: string) => this.post('/email-otp/send', email === undefined ? {} : { email });
  verifyCode = (code: string) => this.post('/email-otp/verify', { code });
  consent = (decision: 'allow' | 'deny') => this.post('/consent', { decision });
  skipEnroll = () => this.post('/enroll/skip');
  abort = () => this.post('/abort');

  /** Follows a `redirect_to` answer back to the app and returns the callback URL. */
  async followToApp(redirectTo: string): Promise<URL> {
    const response = await this.browser.follow(redirectTo, { origin: new URL(this.server.url).origin });
    const location = response.headers.get('location');
    if (!location) throw new Error(`no redirect to the app: ${response.status}`);
    return new URL(location, this.server.url);
  }

  /** Redeems the code in `callback` and returns the ID token claims. */
  async redeem(callback: URL) {
    const rp = await client.discovery(
      new URL(this.server.issuer(this.#options.poolId)),
      this.#options.clientId,
      undefined,
      client.None(),
      {
        execute: [client.allowInsecureRequests],
      },
    );
    client.enableNonRepudiationChecks(rp);
    const tokens = await client.authorizationCodeGrant(rp, callback, {
      pkceCodeVerifier: this.#verifier,
      expectedState: this.#state,
    });
    return { tokens, claims: tokens.claims() as client.IDToken & { amr?: string[]; acr?: string } };
  }

  /** `redirect_to` → callback → tokens, in one call. */
  async finish(redirectTo: string) {
    return this.redeem(await this.followToApp(redirectTo));
  }
}

/** Enough of the options JSON for tests to hand to the soft authenticator. */
export type PublicKeyCredentialRequestOptionsJSONLike = {
  challenge: string;
  rpId?: string;
  allowCredentials?: Array<{ id: string; type: 'public-key'; transports?: string[] }>;
  userVerification?: string;
  timeout?: number;
};

export type PublicKeyCredentialCreationOptionsJSONLike = {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string; displayName: string };
  excludeCredentials?: Array<{ id: string; type: 'public-key'; transports?: string[] }>;
  authenticatorSelection?: Record<string, unknown>;
  attestation?: string;
  timeout?: number;
  pubKeyCredParams: Array<{ alg: number; type: 'public-key' }>;
};
