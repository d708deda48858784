/**
 * Wrong methods on Postern's own routes (issue 8, item 13) answer 405 with
 * `Allow`, in the house format, instead of 404; OPTIONS answers 204 with
 * `Allow` and no CORS headers. So do oidc-provider's endpoints, which
 * answered 404; their CORS preflights must keep working.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { PROVIDER_ROUTES } from '../../../src/oidc/provider-routes.ts';
import type { TestServer } from '../../support/postern-server.ts';
import { probePostgres, probeRedis, serviceTest } from '../../support/services.ts';
import { type LoginFixture, openLoginFixture, poolFile, startLogin } from '../login/login-fixture.ts';

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce(
  (fn, probe) => serviceTest(fn, probe),
  anyTest as TestFn<{ fixture: LoginFixture; server: TestServer; uid: string; stops: Array<() => unknown> }>,
);

const DEMO_POOL = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: demo-app
    token_endpoint_auth_method: none
    redirect_uris: ["\${PUBLIC_URL}/callback"]
    post_logout_redirect_uris: ["\${PUBLIC_URL}/"]
    first_party: true
`;

test.before(async (t) => {
  t.context.fixture = await openLoginFixture();
  t.context.stops = [];
  // One server for the file (no test here changes anything), stopped after the last test.
  const { server } = await t.context.fixture.start(
    { teardown: (stop: () => unknown) => t.context.stops.push(stop) } as unknown as ExecutionContext,
    { acme: poolFile(), demo: DEMO_POOL },
  );
  t.context.server = server;
  t.context.uid = (await startLogin(server, 'acme')).uid;
});
test.after.always(async (t) => {
  for (const stop of t.context.stops ?? []) await stop();
  await t.context.fixture?.close();
});

async function call(server: TestServer, method: string, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { accept: 'application/json', ...headers },
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: response.status, allow: response.headers.get('allow'), headers: response.headers, body };
}

test('a method a Postern route does not take answers 405 with Allow and the house error', async (t) => {
  const { server, uid } = t.context;
  const passkey = '00000000-0000-4000-8000-000000000000';
  const cases: Array<[string, string, string]> = [
    ['GET', `/acme/interaction/${uid}/identify`, 'POST'],
    ['PUT', `/acme/interaction/${uid}/state`, 'GET, HEAD'],
    ['DELETE', `/acme/interaction/${uid}`, 'GET, HEAD'],
    ['PUT', '/acme/api/self/passkeys', 'GET, HEAD'],
    ['GET', `/acme/api/self/passkeys/${passkey}`, 'DELETE, PATCH'],
    ['POST', '/acme/api/self/password', 'PUT'],
    ['POST', '/acme/account', 'GET, HEAD'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['DELETE', '/readyz', 'GET, HEAD'],
    ['POST', '/metrics', 'GET, HEAD'],
    ['POST', '/', 'GET, HEAD'],
    ['POST', '/signin', 'GET, HEAD'],
    ['POST', '/assets/postern.css', 'GET, HEAD'],
  ];
  for (const [method, path, allow] of cases) {
    const answer = await call(server, method, path);
    t.like(answer, { status: 405, allow, body: { error: 'method_not_allowed' } }, `${method} ${path}`);
    t.is(typeof (answer.body as { error_description?: unknown }).error_description, 'string');
  }
});

test('a browser asking with a wrong method gets the HTML error page with the 405', async (t) => {
  const { server, uid } = t.context;
  const answer = await call(server, 'DELETE', `/acme/interaction/${uid}`, { accept: 'text/html' });
  t.is(answer.status, 405);
  t.is(answer.allow, 'GET, HEAD');
  t.regex(answer.headers.get('content-type') ?? '', /^text\/html/);
  t.regex(String(answer.body), /<html/i);
});

test('OPTIONS on a Postern route answers 204 with Allow and grants no cross-origin access', async (t) => {
  const { server, uid } = t.context;
  const answer = await call(server, 'OPTIONS', `/acme/interaction/${uid}/identify`, {
    origin: 'https://elsewhere.example',
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'content-type',
  });
  t.is(answer.status, 204);
  t.is(answer.allow, 'POST');
  t.is(answer.headers.get('access-control-allow-origin'), null);
  t.is(answer.headers.get('access-control-allow-methods'), null);
});

test('a pool that does not exist is still a 404, whatever the method', async (t) => {
  const { server } = t.context;
  for (const method of ['GET', 'DELETE', 'OPTIONS']) {
    const answer = await call(server, method, '/nowhere/interaction/abc');
    t.is(answer.status, 404, method);
    t.is(answer.allow, null, method);
  }
});

test('the right methods still work, and oidc-provider’s CORS preflights are its own', async (t) => {
  const { server } = t.context;
  t.is((await call(server, 'GET', '/healthz')).status, 200);
  t.is((await call(server, 'HEAD', '/assets/postern.css')).status, 200);
  for (const [path, method] of [
    ['/acme/token', 'POST'],
    ['/acme/jwks', 'GET'],
    ['/acme/.well-known/openid-configuration', 'GET'],
  ] as const) {
    const preflight = await call(server, 'OPTIONS', path, {
      origin: 'https://rp.example',
      'access-control-request-method': method,
    });
    t.is(preflight.status, 204, path);
    t.regex(preflight.headers.get('access-control-allow-methods') ?? '', new RegExp(method), path);
  }
});

test('a path nothing serves answers the house 404: JSON for an API client, the error page for a browser', async (t) => {
  const { server } = t.context;
  for (const path of ['/nothing-here', '/acme/no-such-endpoint', '/acme/interaction-typo']) {
    const json = await call(server, 'GET', path);
    t.is(json.status, 404, path);
    t.deepEqual(json.body, { error: 'not_found', error_description: 'There is no such page.' }, path);
    const page = await call(server, 'GET', path, { accept: 'text/html' });
    t.is(page.status, 404, path);
    t.regex(String(page.body), /<html[\s\S]*Page not found/, path);
  }
});

test('a method an oidc-provider endpoint does not take answers 405 with Allow and an OAuth-style error', async (t) => {
  const { server } = t.context;
  const cases: Array<[string, string, string]> = [
    ['GET', '/acme/token', 'OPTIONS, POST'],
    ['HEAD', '/acme/token', 'OPTIONS, POST'],
    ['PUT', '/acme/auth', 'GET, HEAD'],
    ['DELETE', '/acme/auth', 'GET, HEAD'],
    ['POST', '/acme/auth', 'GET, HEAD'],
    ['POST', '/acme/AUTH/', 'GET, HEAD'],
    ['DELETE', '/acme/auth/some-uid', 'GET, HEAD'],
    ['POST', '/acme/jwks', 'GET, HEAD, OPTIONS'],
    ['GET', '/acme/token/introspection', 'OPTIONS, POST'],
    ['GET', '/acme/token/revocation', 'OPTIONS, POST'],
    ['GET', '/acme/request', 'OPTIONS, POST'],
    ['DELETE', '/acme/me', 'GET, HEAD, OPTIONS, POST'],
    ['POST', '/acme/.well-known/openid-configuration', 'GET, HEAD, OPTIONS'],
    ['PUT', '/acme/.well-known/oauth-authorization-server', 'GET, HEAD, OPTIONS'],
    ['POST', '/acme/session/end', 'GET, HEAD'],
    ['GET', '/acme/session/end/confirm', 'POST'],
    ['POST', '/acme/session/end/success', 'GET, HEAD'],
    ['PATCH', '/demo/token', 'OPTIONS, POST'],
  ];
  for (const [method, path, allow] of cases) {
    const answer = await call(server, method, path);
    t.is(answer.status, 405, `${method} ${path}`);
    t.is(answer.allow, allow, `${method} ${path}`);
    if (method === 'HEAD') continue;
    t.like(answer.body, { error: 'method_not_allowed' }, `${method} ${path}`);
    t.is(typeof (answer.body as { error_description?: unknown }).error_description, 'string');
  }
  const page = await call(server, 'PUT', '/acme/auth', { accept: 'text/html' });
  t.is(page.status, 405);
  t.regex(String(page.body), /<html/i);
  const options = await call(server, 'OPTIONS', '/acme/session/end', {
    origin: 'https://rp.example',
    'access-control-request-method': 'GET',
  });
  t.like(options, { status: 204, allow: 'GET, HEAD' });
  t.is(options.headers.get('access-control-allow-origin'), null);
});

test('every method the table of oidc-provider routes lists reaches an endpoint of oidc-provider, and discovery names no other', async (t) => {
  const { server } = t.context;
  for (const route of PROVIDER_ROUTES) {
    const path = `/acme${route.path.replace(':uid', 'some-uid')}`;
    for (const method of route.methods) {
      const answer = await call(server, method, path, {
        'content-type': 'application/x-www-form-urlencoded',
        ...(method === 'OPTIONS'
          ? { origin: 'https://rp.example', 'access-control-request-method': 'POST' }
          : {}),
      });
      t.not(answer.status, 404, `${method} ${path}`);
      t.not(answer.status, 405, `${method} ${path}`);
    }
  }
  const metadata = (await call(server, 'GET', '/acme/.well-known/openid-configuration')).body as Record<
    string,
    unknown
  >;
  const endpoints = Object.entries(metadata).filter(
    ([key]) => key.endsWith('_endpoint') || key === 'jwks_uri',
  );
  t.true(endpoints.length >= 7);
  const prefix = `${server.issuer('acme')}`;
  for (const [key, url] of endpoints) {
    t.true(String(url).startsWith(prefix), key);
    const route = PROVIDER_ROUTES.find((candidate) => candidate.path === String(url).slice(prefix.length));
    t.truthy(route, `${key}: ${String(url)}`);
  }
});
