/**
 * The `{organization}` of the admin API's organization routes (issue 8,
 * item 11), against real PostgreSQL: a handle that is neither an id nor a
 * slug names no organization and answers 404, on every route, also when it
 * holds U+0000 (PostgreSQL refused to compare it, and the answer was a 500).
 */
import { randomUUID } from 'node:crypto';
import { loginTests, REDIRECT } from '../login/login-fixture.ts';
import { adminCall, machineToken } from './admin-client.ts';

const test = await loginTests();

const SECRET = 'ops-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

const pool = `
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    first_party: true
  - client_id: ops
    client_secret: ${SECRET}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: admin
`;

test('a handle that is neither an id nor a slug answers 404 no such organization on every route, U+0000 included', async (t) => {
  const { server } = await t.context.fixture.start(t, { handles: pool });
  const token = await machineToken(server, 'handles', { clientId: 'ops', secret: SECRET });
  const call = (method: string, path: string, json?: unknown) =>
    adminCall(server, 'handles', token, method, path, json);
  const created = await call('POST', 'organizations', { slug: 'acme-inc', name: 'Acme Inc.' });
  t.is(created.status, 201);
  const user = await server.runtime.durable.users.create({
    poolId: 'handles',
    email: 'ada@handles.example',
    emailVerified: true,
  });

  const handles = ['a%00b', '%00', 'acme-inc%00', '%C0%80', '%ED%A0%80', 'Acme-Inc', '-acme', 'x'.repeat(64)];
  for (const handle of handles) {
    const routes: Array<[string, string, unknown?]> = [
      ['GET', `organizations/${handle}`],
      ['PATCH', `organizations/${handle}`, { name: 'Renamed' }],
      ['DELETE', `organizations/${handle}`],
      ['GET', `organizations/${handle}/members`],
      ['PUT', `organizations/${handle}/members/${user.id}`, {}],
      ['DELETE', `organizations/${handle}/members/${user.id}`],
    ];
    for (const [method, path, json] of routes) {
      const answer = await call(method, path, json);
      t.like(
        answer,
        { status: 404, body: { error: 'not_found', error_description: 'There is no such organization.' } },
        `${method} ${path}`,
      );
    }
  }

  // Its slug and its id still name it; an unknown id is the same 404.
  t.like(await call('GET', 'organizations/acme-inc'), { status: 200, body: { slug: 'acme-inc' } });
  t.like(await call('GET', `organizations/${created.body.id.toUpperCase()}`), { status: 200 });
  t.like(await call('GET', `organizations/${randomUUID()}`), { status: 404, body: { error: 'not_found' } });
  t.like(await call('PATCH', 'organizations/acme-inc', { name: 'Acme' }), {
    status: 200,
    body: { name: 'Acme' },
  });
});
