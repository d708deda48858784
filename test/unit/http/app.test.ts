import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { createApp } from '../../../src/app.ts';
import type { Config } from '../../../src/config/types.ts';
import { createRenderer } from '../../../src/http/render.ts';
import type { LoginService } from '../../../src/interactions/login-service.ts';
import type { PoolRegistry } from '../../../src/pools/pool-registry.ts';
import { StoreUnavailableError } from '../../../src/storage/errors.ts';
import type { DurableStore, EphemeralStore } from '../../../src/storage/types.ts';
import { testLogger } from '../../support/postern-server.ts';

const config = {
  server: { public_url: 'https://id.acme.example', trust_proxy: false },
  pools: [],
} as unknown as Config;

const registry: PoolRegistry = {
  get: () => undefined,
  list: () => [],
  refreshKeys: async () => {},
  close: () => {},
};

async function serve(
  t: { teardown(fn: () => void): void },
  pings: { database?: () => Promise<void>; redis?: () => Promise<void> },
) {
  const app = createApp({
    config,
    registry,
    durable: { ping: pings.database ?? (async () => {}) } as DurableStore,
    ephemeral: { ping: pings.redis ?? (async () => {}) } as EphemeralStore,
    logger: testLogger(),
    render: createRenderer(),
    login: {
      prefetchProgress: () => Promise.reject(new Error('no login in this test')),
      state: () => Promise.reject(new Error('no login in this test')),
      calls: [],
    } satisfies LoginService,
    cookieKeys: ['test-cookie-key'],
  });
  const server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('readiness is 200 when both services answer', async (t) => {
  const url = await serve(t, {});
  const response = await fetch(`${url}/readyz`);
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { status: 'ready' });
});

test('readiness is 503 and names the service that does not answer', async (t) => {
  const down = async () => {
    throw new StoreUnavailableError('redis');
  };
  const url = await serve(t, { redis: down });
  const response = await fetch(`${url}/readyz`);
  t.is(response.status, 503);
  t.deepEqual(await response.json(), { status: 'unavailable', unavailable: ['redis'] });

  const bothDown = await serve(t, { redis: down, database: down });
  t.deepEqual(await (await fetch(`${bothDown}/readyz`)).json(), {
    status: 'unavailable',
    unavailable: ['database', 'redis'],
  });
});

test('readiness does not hang on a service that never answers', async (t) => {
  const url = await serve(t, { database: () => new Promise(() => {}) });
  const started = Date.now();
  const response = await fetch(`${url}/readyz`);
  t.is(response.status, 503);
  t.true(Date.now() - started < 3000);
  t.deepEqual(await response.json(), { status: 'unavailable', unavailable: ['database'] });
});

test('every response carries the security headers and a request id', async (t) => {
  const url = await serve(t, {});
  for (const path of ['/healthz', '/nope/anything', '/assets/postern.css']) {
    const response = await fetch(`${url}${path}`);
    const csp = response.headers.get('content-security-policy') ?? '';
    t.regex(csp, /frame-ancestors 'none'/, path);
    t.regex(csp, /script-src 'self'(;|$)/, path);
    t.notRegex(csp, /unsafe-inline/, path);
    t.is(response.headers.get('x-content-type-options'), 'nosniff', path);
    t.is(response.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains', path);
    t.regex(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, path);
  }
});

test('a request id from the client is ignored unless a proxy is trusted', async (t) => {
  const url = await serve(t, {});
  const response = await fetch(`${url}/healthz`, { headers: { 'x-request-id': 'attacker-chosen-id-123' } });
  t.not(response.headers.get('x-request-id'), 'attacker-chosen-id-123');
});

test('pool paths are never cached, and an unknown pool is a 404', async (t) => {
  const url = await serve(t, {});
  const response = await fetch(`${url}/nope/interaction/abc`, { headers: { accept: 'application/json' } });
  t.is(response.status, 404);
  t.is(response.headers.get('cache-control'), 'no-store');
});

test('a pool’s discovery document and JWKS may be cached briefly; nothing else under a pool', async (t) => {
  const url = await serve(t, {});
  const cacheOf = async (path: string) => (await fetch(`${url}${path}`)).headers.get('cache-control');
  t.is(await cacheOf('/acme/.well-known/openid-configuration'), 'public, max-age=300');
  t.is(await cacheOf('/acme/jwks'), 'public, max-age=30');
  t.is(await cacheOf('/acme/jwks/x'), 'no-store');
  t.is(await cacheOf('/acme/token'), 'no-store');
});

test('static assets are served with a validator and answer 304 when unchanged', async (t) => {
  const url = await serve(t, {});
  const first = await fetch(`${url}/assets/postern.css`);
  t.is(first.status, 200);
  t.regex(first.headers.get('content-type') ?? '', /text\/css/);
  const etag = first.headers.get('etag') ?? '';
  const second = await fetch(`${url}/assets/postern.css`, { headers: { 'if-none-match': etag } });
  t.is(second.status, 304);
  t.is((await fetch(`${url}/assets/../package.json`)).status, 404);
});

test('every page names an icon that is served, so browsers do not ask for a missing /favicon.ico', async (t) => {
  const url = await serve(t, {});
  const page = await (await fetch(`${url}/nope`, { headers: { accept: 'text/html' } })).text();
  const icon = /<link rel="icon" href="([^"]+)"/.exec(page)?.[1];
  t.truthy(icon, page);
  const response = await fetch(`${url}${icon}`);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'image/svg+xml');
});
