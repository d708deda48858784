/**
 * Issue 2's platform, against real PostgreSQL and Redis: two servers share
 * the same stores behind one public URL, as two processes behind a load
 * balancer would, and openid-client is the relying party.
 */
import anyTest, { type TestFn } from 'ava';
import * as client from 'openid-client';
import pg from 'pg';
import { openStores } from '../../../src/storage/open-stores.ts';
import { Browserless } from '../../support/browserless.ts';
import { finishLogin } from '../../support/finish-login.ts';
import { freePort, startTestServer, type TestServer } from '../../support/postern-server.ts';
import {
  createTestDatabase,
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  type TestDatabase,
  uniqueKeyPrefix,
} from '../../support/services.ts';

const ADMIN_SECRET = 'acme-admin-secret-0123456789-abcdefghij';

const pool = `
display_name: Acme
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: web
    client_secret: web-secret-0123456789-abcdefghijklmnop
    redirect_uris: ["http://localhost:8080/callback"]
    grant_types: [authorization_code, refresh_token]
    scope: openid email offline_access
  - client_id: admin
    client_secret: ${ADMIN_SECRET}
    grant_types: [client_credentials]
    scope: admin
`;

/** A pool with one browser client and no machine client: nothing but the code flow to advertise. */
const plainPool = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: spa
    token_endpoint_auth_method: none
    redirect_uris: ["http://localhost:8080/callback"]
    scope: openid email
`;

interface Context {
  database: TestDatabase;
  prefix: string;
  publicUrl: string;
  servers: TestServer[];
  userId: string;
}

const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
const test = serviceTest(serviceTest(anyTest as TestFn<Context>, postgres), redis);

async function startPair(t: { context: Context }): Promise<[TestServer, TestServer]> {
  const { database, prefix, publicUrl } = t.context;
  const options = {
    pools: { acme: pool, plain: plainPool },
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    publicUrl,
  };
  const a = await startTestServer({ ...options, port: Number(new URL(publicUrl).port) });
  const b = await startTestServer(options);
  t.context.servers.push(a, b);
  return [a, b];
}

test.before(async (t) => {
  const database = await createTestDatabase();
  const prefix = uniqueKeyPrefix();
  const stores = await openStores({
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  await stores.durable.migrate();
  const user = await stores.durable.users.create({
    poolId: 'acme',
    email: 'ada@acme.example',
    emailVerified: true,
  });
  await stores.close();
  t.context = {
    database,
    prefix,
    publicUrl: `http://localhost:${await freePort()}`,
    servers: [],
    userId: user.id,
  };
});

test.after.always(async (t) => {
  await Promise.all((t.context.servers ?? []).map((server) => server.stop().catch(() => {})));
  await t.context.database?.drop();
  if (t.context.prefix) await deleteKeysWithPrefix(t.context.prefix);
});

/** openid-client configured for `server`, whatever public URL it answers for. */
async function relyingParty(server: TestServer, clientId: string, secret: string) {
  const listen = new URL(server.listenUrl);
  const viaServer: client.CustomFetch = (url, options) => {
    const target = new URL(url);
    target.host = listen.host;
    return fetch(target, options as RequestInit);
  };
  const config = await client.discovery(new URL(server.issuer('acme')), clientId, secret, undefined, {
    execute: [client.allowInsecureRequests],
    [client.customFetch]: viaServer,
  });
  client.enableNonRepudiationChecks(config);
  return config;
}

test.serial(
  'discovery advertises the code flow with S256, phr and phrh, and the enabled endpoints',
  async (t) => {
    const [a] = await startPair(t);
    const metadata = (
      await relyingParty(a, 'web', 'web-secret-0123456789-abcdefghijklmnop')
    ).serverMetadata();
    t.is(metadata.issuer, `${t.context.publicUrl}/acme`);
    t.deepEqual(metadata.response_types_supported, ['code']);
    t.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
    t.deepEqual(metadata.acr_values_supported, ['phrh', 'phr', '0']);
    t.deepEqual(metadata.grant_types_supported, [
      'authorization_code',
      'refresh_token',
      'client_credentials',
    ]);
    for (const endpoint of [
      'authorization_endpoint',
      'token_endpoint',
      'userinfo_endpoint',
      'introspection_endpoint',
      'revocation_endpoint',
      'end_session_endpoint',
      'pushed_authorization_request_endpoint',
      'jwks_uri',
    ] as const) {
      t.true(String(metadata[endpoint]).startsWith(`${t.context.publicUrl}/acme/`), endpoint);
    }
    t.truthy(metadata.dpop_signing_alg_values_supported);
    t.is(metadata.registration_endpoint, undefined);
    t.is(metadata.device_authorization_endpoint, undefined);
    t.deepEqual(metadata.response_modes_supported, ['query', 'form_post'], 'no code in a URL fragment');
    t.deepEqual(metadata.scopes_supported, ['openid', 'offline_access', 'email', 'profile', 'admin']);

    // A pool whose only client is a browser app advertises no machine grant, refresh or admin scope.
    const plain = (await (await fetch(`${a.listenUrl}/plain/.well-known/openid-configuration`)).json()) as {
      grant_types_supported: string[];
      scopes_supported: string[];
    };
    t.deepEqual(plain.grant_types_supported, ['authorization_code']);
    t.deepEqual(plain.scopes_supported, ['openid', 'email', 'profile']);

    // And what discovery leaves out is refused, not quietly served.
    const authorize = new URL(`${a.listenUrl}/plain/auth`);
    for (const [key, value] of Object.entries({
      client_id: 'spa',
      redirect_uri: 'http://localhost:8080/callback',
      response_type: 'code',
      response_mode: 'fragment',
      scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    })) {
      authorize.searchParams.set(key, value);
    }
    const refused = await fetch(authorize, { redirect: 'manual' });
    t.notRegex(refused.headers.get('location') ?? '', /#code=/);
    t.regex(
      await refused.text().then((body) => `${refused.headers.get('location')} ${body}`),
      /response_mode|unsupported/,
    );
  },
);

test.serial('the issuer never comes from the Host or X-Forwarded-Host header', async (t) => {
  const [, b] = t.context.servers as [TestServer, TestServer];
  const response = await fetch(`${b.listenUrl}/acme/.well-known/openid-configuration`, {
    headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
  });
  const metadata = (await response.json()) as { issuer: string; token_endpoint: string };
  t.is(metadata.issuer, `${t.context.publicUrl}/acme`);
  t.is(metadata.token_endpoint, `${t.context.publicUrl}/acme/token`);
});

test.serial(
  'two servers publish the same keys and accept each other’s tokens: client credentials, introspection, revocation',
  async (t) => {
    const [a, b] = t.context.servers as [TestServer, TestServer];
    const [jwksA, jwksB] = await Promise.all(
      [a, b].map(async (server) => (await fetch(`${server.listenUrl}/acme/jwks`)).json()),
    );
    t.deepEqual(jwksA, jwksB);
    t.false(JSON.stringify(jwksA).includes('"d"'), 'no private key material is published');

    const viaA = await relyingParty(a, 'admin', ADMIN_SECRET);
    const viaB = await relyingParty(b, 'admin', ADMIN_SECRET);
    const tokens = await client.clientCredentialsGrant(viaA, { scope: 'admin' });
    t.is(tokens.scope, 'admin');

    const active = await client.tokenIntrospection(viaB, tokens.access_token);
    t.true(active.active);
    t.is(active.client_id, 'admin');
    t.is(active.scope, 'admin');

    await client.tokenRevocation(viaA, tokens.access_token);
    t.false((await client.tokenIntrospection(viaB, tokens.access_token)).active);
  },
);

test.serial('a code flow starts and lands on the pool’s interaction page', async (t) => {
  const [a] = t.context.servers as [TestServer, TestServer];
  const rp = await relyingParty(a, 'web', 'web-secret-0123456789-abcdefghijklmnop');
  const url = client.buildAuthorizationUrl(rp, {
    redirect_uri: 'http://localhost:8080/callback',
    scope: 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const response = await new Browserless().fetch(url.href.replace(t.context.publicUrl, a.listenUrl));
  t.is(response.status, 303);
  t.regex(response.headers.get('location') ?? '', /^\/acme\/interaction\/[\w-]+$/);
});

test.serial('PKCE is required of every client', async (t) => {
  const [a] = t.context.servers as [TestServer, TestServer];
  const rp = await relyingParty(a, 'web', 'web-secret-0123456789-abcdefghijklmnop');
  const url = client.buildAuthorizationUrl(rp, {
    redirect_uri: 'http://localhost:8080/callback',
    scope: 'openid',
  });
  const response = await new Browserless().fetch(url.href.replace(t.context.publicUrl, a.listenUrl));
  const location = new URL(response.headers.get('location') ?? '', t.context.publicUrl);
  t.is(location.origin, 'http://localhost:8080');
  t.is(location.searchParams.get('error'), 'invalid_request');
  t.regex(location.searchParams.get('error_description') ?? '', /PKCE/);
});

/** Runs a code flow to the callback through `server`, finishing the login directly. */
async function codeFlow(t: { context: Context }, server: TestServer) {
  const rp = await relyingParty(server, 'web', 'web-secret-0123456789-abcdefghijklmnop');
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(rp, {
    redirect_uri: 'http://localhost:8080/callback',
    scope: 'openid email offline_access',
    prompt: 'consent',
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const browser = new Browserless();
  const toListen = (href: string) => href.replace(t.context.publicUrl, server.listenUrl);
  const start = await browser.fetch(toListen(url.href));
  const uid = (start.headers.get('location') ?? '').split('/').pop() ?? '';
  const returnTo = await finishLogin(server.registry.get('acme')!.provider, uid, {
    accountId: t.context.userId,
  });
  const callback = await browser.follow(toListen(returnTo), { origin: new URL(server.listenUrl).origin });
  const callbackUrl = new URL(callback.headers.get('location') ?? '');
  return { rp, callbackUrl, verifier, state };
}

test.serial(
  'exactly one of two concurrent redemptions of a code wins, and the grant is revoked',
  async (t) => {
    const [a, b] = t.context.servers as [TestServer, TestServer];
    const { rp, callbackUrl, verifier, state } = await codeFlow(t, a);
    const rpB = await relyingParty(b, 'web', 'web-secret-0123456789-abcdefghijklmnop');
    const redeem = (config: client.Configuration) =>
      client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
    const results = await Promise.allSettled([redeem(rp), redeem(rpB)]);
    const won = results.filter((result) => result.status === 'fulfilled');
    t.is(won.length, 1);
    const lost = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
    t.is((lost.reason as { error?: string }).error, 'invalid_grant');
    // The code was replayed: what it granted is revoked (RFC 6749 §4.1.2).
    const tokens = (won[0] as PromiseFulfilledResult<client.TokenEndpointResponse>).value;
    t.false((await client.tokenIntrospection(rp, tokens.access_token)).active);
  },
);

test.serial(
  'a refresh token survives a restart of both servers, rotates, and its reuse is refused',
  async (t) => {
    const [a, b] = t.context.servers as [TestServer, TestServer];
    const { rp, callbackUrl, verifier, state } = await codeFlow(t, a);
    const tokens = await client.authorizationCodeGrant(rp, callbackUrl, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    t.truthy(tokens.refresh_token);
    const claims = tokens.claims();
    t.is(claims?.sub, t.context.userId);
    t.deepEqual(claims?.amr, ['otp']);
    t.is(claims?.acr, '0');
    t.is(typeof claims?.auth_time, 'number');
    const kid = JSON.parse(Buffer.from(tokens.id_token?.split('.')[0] ?? '', 'base64url').toString())
      .kid as string;

    await Promise.all([a.stop(), b.stop()]);
    t.context.servers.splice(0); // in place: ava gives each test a shallow copy of the context
    const [a2, b2] = await startPair(t);
    const rpB = await relyingParty(b2, 'web', 'web-secret-0123456789-abcdefghijklmnop');
    const refreshed = await client.refreshTokenGrant(rpB, tokens.refresh_token ?? '');
    t.truthy(refreshed.access_token);
    t.not(refreshed.refresh_token, tokens.refresh_token);
    t.is(refreshed.claims()?.sub, t.context.userId);
    const kidAfter = JSON.parse(
      Buffer.from(refreshed.id_token?.split('.')[0] ?? '', 'base64url').toString(),
    ).kid;
    t.is(kidAfter, kid, 'restarts keep the signing keys');

    const rpA = await relyingParty(a2, 'web', 'web-secret-0123456789-abcdefghijklmnop');
    const reuse = await client
      .refreshTokenGrant(rpA, tokens.refresh_token ?? '')
      .catch((error: unknown) => error);
    t.is((reuse as { error?: string }).error, 'invalid_grant');
    // Reuse of a rotated refresh token revokes the grant (RFC 9700 §4.14.2).
    const after = await client
      .refreshTokenGrant(rpA, refreshed.refresh_token ?? '')
      .catch((error: unknown) => error);
    t.is((after as { error?: string }).error, 'invalid_grant');
  },
);

test.serial(
  'a rotated key is published by both servers before either signs with it; then both sign with it and keep the old one published',
  async (t) => {
    const [a, b] = t.context.servers as [TestServer, TestServer];
    const jwksOf = async (server: TestServer) =>
      (
        (await (await fetch(`${server.listenUrl}/acme/jwks`)).json()) as { keys: Array<{ kid: string }> }
      ).keys.map((key) => key.kid);
    const idTokenKid = async (server: TestServer) => {
      const { rp, callbackUrl, verifier, state } = await codeFlow(t, server);
      const tokens = await client.authorizationCodeGrant(rp, callbackUrl, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
      return JSON.parse(Buffer.from(tokens.id_token?.split('.')[0] ?? '', 'base64url').toString())
        .kid as string;
    };
    const before = await jwksOf(a);
    const { rotateSigningKeys } = await import('../../../src/oidc/signing-keys.ts');
    const { signingKeyBox } = await import('../../../src/pools/pool-registry.ts');
    const { kids: newKids } = await rotateSigningKeys(
      a.runtime.durable.signingKeys,
      'acme',
      signingKeyBox(a.runtime.secret.secret),
    );
    await Promise.all([a.registry.refreshKeys(), b.registry.refreshKeys()]);
    for (const server of [a, b]) t.deepEqual((await jwksOf(server)).sort(), [...newKids, ...before].sort());
    t.true(
      before.includes(await idTokenKid(b)),
      'the old key signs until every server publishes the new one',
    );

    // A minute on: the replaced keys' signing period is over.
    const db = new pg.Client({ connectionString: t.context.database.url });
    await db.connect();
    await db.query(
      `update signing_keys set retired_at = now() - interval '1 second' where retired_at > now()`,
    );
    await db.end();
    await Promise.all([a.registry.refreshKeys(), b.registry.refreshKeys()]);
    for (const server of [a, b]) {
      t.true(newKids.includes(await idTokenKid(server)));
      t.deepEqual(
        (await jwksOf(server)).sort(),
        [...newKids, ...before].sort(),
        'the old keys stay published',
      );
    }
  },
);

test.serial('readiness reports both services, and metrics count requests by route', async (t) => {
  const [a] = t.context.servers as [TestServer, TestServer];
  const ready = await fetch(`${a.listenUrl}/readyz`);
  t.is(ready.status, 200);
  t.deepEqual(await ready.json(), { status: 'ready' });
  const metrics = await (await fetch(`${a.listenUrl}/metrics`)).text();
  t.regex(
    metrics,
    /postern_http_request_duration_seconds_count\{method="POST",route="\/:pool\/oidc\/token",status="\d+"\} [1-9]/,
  );
  t.regex(metrics, /route="\/readyz",status="200"/);
});
