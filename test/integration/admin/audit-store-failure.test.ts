/**
 * A refusal stays a refusal when its audit trail cannot be written (issue 8,
 * item 11), against real PostgreSQL and Redis: the routes of the admin API,
 * self-service and enrolment write the trail as the request ends, and a
 * failing audit store turned their audited 4xx into a 500. Now the client
 * gets the 4xx and the operator's log the failure; a success whose audit
 * cannot be written still fails.
 */

import type { DurableStore } from '../../../src/storage/types.ts';
import { captureLogs, LEVEL } from '../../support/log-capture.ts';
import { startTestServer } from '../../support/postern-server.ts';
import { redisTestUrl, uniqueKeyPrefix } from '../../support/services.ts';
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

/** The durable store with an audit repository that fails while `broken.now` is true. */
function breakableAudit(durable: DurableStore, broken: { now: boolean }): DurableStore {
  const auditEvents = new Proxy(durable.auditEvents, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== 'appendMany' || typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        broken.now ? Promise.reject(new Error('audit store down')) : value.apply(target, args);
    },
  });
  return new Proxy(durable, {
    get: (target, property, receiver) =>
      property === 'auditEvents' ? auditEvents : Reflect.get(target, property, receiver),
  });
}

test('an audited refusal of the admin API answers its 4xx when the audit store fails, and the log says so', async (t) => {
  const broken = { now: false };
  const logs = captureLogs('info');
  const server = await startTestServer({
    pools: { acme: pool },
    server: 'database:\n  pool_max: 2\n',
    databaseUrl: t.context.fixture.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: uniqueKeyPrefix(),
    env: { SMTP_URL: t.context.fixture.mail.url },
    logger: logs.logger,
    wrapStores: ({ durable, ephemeral }) => ({ durable: breakableAudit(durable, broken), ephemeral }),
  });
  t.teardown(() => server.stop());
  const token = await machineToken(server, 'acme', { clientId: 'ops', secret: SECRET });
  const call = (method: string, path: string, json?: unknown) =>
    adminCall(server, 'acme', token, method, path, json);

  t.is((await call('POST', 'organizations', { slug: 'acme-inc', name: 'Acme Inc.' })).status, 201);
  broken.now = true;

  // slug_taken is audited as a failure before it is answered.
  const taken = await call('POST', 'organizations', { slug: 'acme-inc', name: 'Acme Again' });
  t.like(taken, { status: 409, body: { error: 'slug_taken' } });
  const invalid = await call('POST', 'organizations', { slug: 'Not A Slug', name: 'X' });
  t.like(invalid, { status: 400, body: { error: 'invalid_request' } });
  t.true(
    logs.lines.some((line) => line.level >= LEVEL.error && /audit trail of a refused request/.test(line.msg)),
    'the lost audit row is in the log',
  );

  // A change that succeeds but cannot be audited is not answered as done.
  const unaudited = await call('POST', 'organizations', { slug: 'other-inc', name: 'Other Inc.' });
  t.true(unaudited.status >= 500, String(unaudited.status));
});
