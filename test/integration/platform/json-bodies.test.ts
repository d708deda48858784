/**
 * Request bodies an attacker shapes (issue 8, items 11 and 12), against real
 * PostgreSQL and Redis: text that is not well-formed Unicode, and compressed
 * bodies that are cut off, corrupt or in a coding Postern does not take. The
 * interaction API and the self-service API share one body reader, so both are
 * tried: each refusal is a 4xx in the house format, changes nothing, and
 * leaves no error (no stack) in the log; an audited refusal is still audited.
 * oidc-provider's endpoints take uncompressed bodies only.
 */
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import type { InteractionClient } from '../../support/interaction-client.ts';
import { captureLogs, LEVEL, type LogCapture } from '../../support/log-capture.ts';
import { startTestServer, type TestServer } from '../../support/postern-server.ts';
import {
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  uniqueKeyPrefix,
} from '../../support/services.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  type LoginFixture,
  mailedCode,
  openLoginFixture,
  poolFile,
  signUp,
  startLogin,
} from '../login/login-fixture.ts';

interface Context {
  fixture: LoginFixture;
  prefixes: string[];
}

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<Context>);

test.before(async (t) => {
  t.context.fixture = await openLoginFixture();
  t.context.prefixes = [];
});
test.after.always(async (t) => {
  await t.context.fixture?.close();
  for (const prefix of t.context.prefixes ?? []) await deleteKeysWithPrefix(prefix);
});

/** A server for this test with the file's database and mail sink, logging into `logs`. */
async function serve(
  t: ExecutionContext<Context>,
  poolId: string,
  pool = poolFile(),
): Promise<{ server: TestServer; logs: LogCapture }> {
  const prefix = uniqueKeyPrefix();
  t.context.prefixes.push(prefix);
  const logs = captureLogs('info');
  const server = await startTestServer({
    pools: { [poolId]: pool },
    server: 'database:\n  pool_max: 2\n',
    databaseUrl: t.context.fixture.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    env: { SMTP_URL: t.context.fixture.mail.url },
    logger: logs.logger,
  });
  t.teardown(() => server.stop());
  return { server, logs };
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: response.status, headers: response.headers, body };
}

/** A body fetch takes as it is. */
const bytesOf = (body: string | Buffer) => (typeof body === 'string' ? body : new Uint8Array(body));

/** POSTs raw bytes (nothing encoded for us) to an interaction API path, with the interaction cookie. */
async function postRaw(
  login: InteractionClient,
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return answerOf(
    await login.browser.fetch(`${login.base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: bytesOf(body),
    }),
  );
}

/** Calls the self-service API with a bearer token and raw bytes. */
async function selfService(
  server: TestServer,
  poolId: string,
  token: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return answerOf(
    await fetch(`${server.url}/${poolId}/api/self/${path}`, {
      method,
      headers: {
        accept: 'application/json',
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : bytesOf(body),
    }),
  );
}

/** A user signed up with a software passkey, with an access token for the self-service API. */
async function signedUp(server: TestServer, fixture: LoginFixture, poolId: string) {
  const authenticator = new SoftAuthenticator();
  const email = `ada@${poolId}.example`;
  const { login, answer } = await signUp(server, fixture.mail, poolId, email, authenticator);
  const { tokens } = await login.finish(String(answer.body.redirect_to));
  return { authenticator, token: tokens.access_token };
}

/** The house error body with `code`. */
const refused = (status: number, code: string) => ({ status, body: { error: code } });

function assertNoErrorLogged(t: ExecutionContext<Context>, logs: LogCapture) {
  const errors = logs.lines.filter((line) => line.level >= LEVEL.error);
  t.deepEqual(errors, [], 'no error (and no stack) in the log');
}

// `JSON.stringify` writes a lone surrogate as the escape `\ud800` (ES2019), which is what an attacker sends.
const LONE = '\ud800';

test('a lone surrogate anywhere in an interaction API body answers 400 invalid_request and changes nothing', async (t) => {
  const { fixture } = t.context;
  const { server, logs } = await serve(t, 'unicode-login');
  const login = await startLogin(server, 'unicode-login');
  const email = 'newcomer@unicode-login.example';
  await login.identify(email);
  await login.sendCode();
  const enroll = await login.verifyCode(await fixture.mail.nextCode(email));
  t.like(enroll.body, { step: 'enroll' });
  const before = await fixture.accounts('unicode-login');

  const authenticator = new SoftAuthenticator();
  const options = await login.registerOptions();
  const response = authenticator.register(options.body as never, server.url);
  const bodies: Array<[string, string | Buffer, string]> = [
    ['a value', JSON.stringify({ name: `My key ${LONE}` }), '/passkey/register/options'],
    ['a low surrogate alone', JSON.stringify({ name: 'key \udc00 here' }), '/passkey/register/options'],
    [
      'a nested key',
      JSON.stringify({ response: { ...response, clientExtensionResults: { [`x${LONE}`]: true } } }),
      '/passkey/register/verify',
    ],
    [
      'a string in a nested array',
      JSON.stringify({ response: { ...response, clientExtensionResults: { list: [[`a${LONE}`]] } } }),
      '/passkey/register/verify',
    ],
    // The same surrogate as raw bytes (CESU-style ED A0 80) is not UTF-8 at all.
    [
      'raw surrogate bytes',
      Buffer.from([...Buffer.from('{"name":"'), 0xed, 0xa0, 0x80, ...Buffer.from('"}')]),
      '/passkey/register/options',
    ],
  ];
  for (const [label, body, path] of bodies) {
    const answer = await postRaw(login, path, body);
    t.like(answer, refused(400, 'invalid_request'), label);
    t.is(typeof answer.body.error_description, 'string', label);
  }
  t.deepEqual(await fixture.accounts('unicode-login'), before, 'no account, no passkey');

  // A refused verification spends its challenge, a body refused for its text too (issue 8,
  // item 8): the response to those options no longer works, new options do, and the sign-up goes on.
  const stale = await login.registerVerify(response, 'My key');
  t.like(stale, { status: 400, body: { error: 'passkey_rejected' } });
  const fresh = await login.registerOptions();
  const registered = await login.registerVerify(
    authenticator.register(fresh.body as never, server.url),
    'My key',
  );
  t.is(registered.status, 200, JSON.stringify(registered.body));
  t.truthy(registered.body.redirect_to);
  assertNoErrorLogged(t, logs);
});

test('a passkey whose client data quotes a lone surrogate is refused with 400 and audited, not a 500', async (t) => {
  const { fixture } = t.context;
  const { server, logs } = await serve(t, 'unicode-audit');
  const { authenticator } = await signedUp(server, fixture, 'unicode-audit');

  // clientDataJSON is JSON inside base64url: the body reader cannot see into it, and the
  // ceremony's refusal quotes the origin it found, surrogate and all, in the audit row.
  const login = await startLogin(server, 'unicode-audit');
  const options = await login.passkeyOptions();
  const assertion = authenticator.authenticate(options.body as never, server.url, {
    origin: `${server.url}${LONE}\u0000`,
  });
  const answer = await login.passkeyVerify(assertion);
  t.like(answer, refused(400, 'passkey_rejected'));

  const [audited] = await server.runtime.durable.auditEvents.list('unicode-audit', { event: 'sign_in' });
  t.like(audited, { outcome: 'failure' });
  const reason = String((audited?.detail as { reason?: unknown } | null)?.reason);
  t.true(reason.includes('\ufffd'), reason);
  t.false(/\p{Cs}/u.test(reason) || reason.includes('\u0000'), 'stored without what PostgreSQL refuses');
  assertNoErrorLogged(t, logs);
});

test('self-service: a lone surrogate in a body answers 400 invalid_request and renames nothing', async (t) => {
  const { fixture } = t.context;
  const { server, logs } = await serve(t, 'unicode-self');
  const { token } = await signedUp(server, fixture, 'unicode-self');
  const [passkey] = (await selfService(server, 'unicode-self', token, 'GET', 'passkeys'))
    .body as unknown as Array<{
    id: string;
    name: string;
  }>;

  const renamed = await selfService(
    server,
    'unicode-self',
    token,
    'PATCH',
    `passkeys/${passkey?.id}`,
    JSON.stringify({ name: `Laptop ${LONE}` }),
  );
  t.like(renamed, refused(400, 'invalid_request'));
  const [after] = (await selfService(server, 'unicode-self', token, 'GET', 'passkeys'))
    .body as unknown as Array<{
    name: string;
  }>;
  t.is(after?.name, passkey?.name, 'the passkey keeps its name');
  t.deepEqual(
    await server.runtime.durable.auditEvents.list('unicode-self', { event: 'passkey_renamed' }),
    [],
    'nothing renamed, so nothing audited',
  );
  assertNoErrorLogged(t, logs);
});

/** `bytes` cut short: the end of a compressed stream is missing. */
const truncated = (bytes: Buffer) => bytes.subarray(0, bytes.length - 8);

function compressedCases(json: string): Array<[string, Buffer, string, { status: number; code: string }]> {
  const body = Buffer.from(json);
  const corrupt = Buffer.from(deflateSync(body));
  corrupt[4] = (corrupt[4] ?? 0) ^ 0xff;
  return [
    ['truncated gzip', truncated(gzipSync(body)), 'gzip', { status: 400, code: 'invalid_request' }],
    ['truncated deflate', truncated(deflateSync(body)), 'deflate', { status: 400, code: 'invalid_request' }],
    ['corrupt deflate', corrupt, 'deflate', { status: 400, code: 'invalid_request' }],
    [
      'garbage as br',
      Buffer.from('this is not brotli at all'),
      'br',
      { status: 400, code: 'invalid_request' },
    ],
    [
      'truncated br',
      truncated(brotliCompressSync(Buffer.from(json.repeat(50)))),
      'br',
      { status: 400, code: 'invalid_request' },
    ],
    ['gzip declared, plain sent', body, 'gzip', { status: 400, code: 'invalid_request' }],
    [
      'a gzip bomb',
      gzipSync(Buffer.from(`{"padding":"${' '.repeat(4 * 1024 * 1024)}"}`)),
      'gzip',
      { status: 413, code: 'request_too_large' },
    ],
    ['compress', body, 'compress', { status: 415, code: 'invalid_request' }],
    ['zstd', body, 'zstd', { status: 415, code: 'invalid_request' }],
    ['two codings', gzipSync(body), 'gzip, br', { status: 415, code: 'invalid_request' }],
  ];
}

test('interaction API: a truncated or corrupt compressed body answers 400, an unknown coding 415, and nothing else changes', async (t) => {
  const { server, logs } = await serve(t, 'coding-login');
  const login = await startLogin(server, 'coding-login');
  const email = 'coded@coding-login.example';
  for (const [label, body, coding, expected] of compressedCases(JSON.stringify({ email }))) {
    const answer = await postRaw(login, '/identify', body, { 'content-encoding': coding });
    t.like(answer, refused(expected.status, expected.code), label);
    t.is(typeof answer.body.error_description, 'string', label);
    if (expected.status === 415) t.is(answer.headers.get('accept-encoding'), 'gzip, deflate, br', label);
  }
  t.like((await login.state()).body, { step: 'identify' }, 'no refused body identified anyone');

  // What a client may send: gzip, deflate and br bodies are read.
  for (const [coding, compress] of [
    ['gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ] as const) {
    const answer = await postRaw(login, '/identify', compress(Buffer.from(JSON.stringify({ email }))), {
      'content-encoding': coding,
    });
    t.is(answer.status, 200, `${coding}: ${JSON.stringify(answer.body)}`);
    t.like(answer.body, { email });
  }
  assertNoErrorLogged(t, logs);
});

test('self-service: a truncated or corrupt compressed body answers 400, an unknown coding 415', async (t) => {
  const { fixture } = t.context;
  const { server, logs } = await serve(t, 'coding-self');
  const { token } = await signedUp(server, fixture, 'coding-self');
  const [passkey] = (await selfService(server, 'coding-self', token, 'GET', 'passkeys'))
    .body as unknown as Array<{
    id: string;
    name: string;
  }>;
  for (const [label, body, coding, expected] of compressedCases(JSON.stringify({ name: 'Renamed' }))) {
    const answer = await selfService(server, 'coding-self', token, 'PATCH', `passkeys/${passkey?.id}`, body, {
      'content-encoding': coding,
    });
    t.like(answer, refused(expected.status, expected.code), label);
  }
  const [unchanged] = (await selfService(server, 'coding-self', token, 'GET', 'passkeys'))
    .body as unknown as Array<{
    name: string;
  }>;
  t.is(unchanged?.name, passkey?.name);

  const gzipped = await selfService(
    server,
    'coding-self',
    token,
    'PATCH',
    `passkeys/${passkey?.id}`,
    gzipSync(Buffer.from(JSON.stringify({ name: 'Renamed' }))),
    { 'content-encoding': 'gzip' },
  );
  t.like(gzipped, { status: 200, body: { name: 'Renamed' } });
  assertNoErrorLogged(t, logs);
});

test('bodies that are not UTF-8 JSON objects, or poison prototypes, answer 400, 413 or 415', async (t) => {
  const { fixture } = t.context;
  const { server } = await serve(t, 'plain-login');
  const login = await startLogin(server, 'plain-login');
  const email = 'plain@plain-login.example';
  await login.identify(email);
  const code = await mailedCode(login, fixture.mail, email);
  const cases: Array<[string, string | Buffer, Record<string, string>, number]> = [
    [
      'latin-1 declared',
      JSON.stringify({ code }),
      { 'content-type': 'application/json; charset=iso-8859-1' },
      415,
    ],
    ['a JSON scalar', 'null', {}, 400],
    ['prototype poisoning', `{"code":"${code}","__proto__":{"admin":true}}`, {}, 400],
    ['constructor.prototype', `{"code":"${code}","constructor":{"prototype":{"admin":true}}}`, {}, 400],
    ['deeply nested', `{"code":${'['.repeat(30_000)}${']'.repeat(30_000)}}`, {}, 400],
    ['over 64 KB', JSON.stringify({ code, padding: 'x'.repeat(70 * 1024) }), {}, 413],
  ];
  for (const [label, body, headers, status] of cases) {
    const answer = await postRaw(login, '/email-otp/verify', body, headers);
    t.is(answer.status, status, `${label}: ${JSON.stringify(answer.body)}`);
    t.is(typeof answer.body.error, 'string', label);
  }
  t.is((await login.verifyCode(code)).status, 200, 'the code is still good after all that');
});

const MACHINE_SECRET = 'machine-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

/** poolFile() with a client-credentials client, `machine`. */
const machinePool = () =>
  `${poolFile()}  - client_id: machine
    client_secret: ${MACHINE_SECRET}
    grant_types: [client_credentials]
    redirect_uris: []
    scope: admin
`;

test('oidc-provider endpoints: a compressed body, in any coding, answers 415 with Accept-Encoding: identity and issues nothing', async (t) => {
  const { server, logs } = await serve(t, 'coding-oidc', machinePool());
  const form = Buffer.from(
    new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }).toString(),
  );
  const post = (path: string, body: Buffer, coding?: string) =>
    fetch(`${server.issuer('coding-oidc')}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`machine:${MACHINE_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...(coding === undefined ? {} : { 'content-encoding': coding }),
      },
      body: new Uint8Array(body),
    }).then(answerOf);
  const cases: Array<[string, Buffer, string]> = [
    ['zstd, sent plain', form, 'zstd'],
    ['compress, sent plain', form, 'compress'],
    ['an unknown coding', form, 'x-postern'],
    ['gzip', gzipSync(form), 'gzip'],
    ['truncated gzip', truncated(gzipSync(form)), 'gzip'],
    ['deflate', deflateSync(form), 'deflate'],
    ['br', brotliCompressSync(form), 'br'],
    ['gzip and identity', gzipSync(form), 'gzip, identity'],
  ];
  for (const [label, body, coding] of cases) {
    for (const path of ['/token', '/request', '/token/introspection']) {
      const answer = await post(path, body, coding);
      t.like(answer, refused(415, 'invalid_request'), `${label} to ${path}`);
      t.is(answer.headers.get('accept-encoding'), 'identity', `${label} to ${path}`);
      t.is(typeof answer.body.error_description, 'string', label);
    }
  }
  // Uncompressed, said or not, is read.
  for (const coding of [undefined, 'identity', 'IDENTITY']) {
    const answer = await post('/token', form, coding);
    t.is(answer.status, 200, `${coding}: ${JSON.stringify(answer.body)}`);
    t.is(typeof answer.body.access_token, 'string');
  }
  assertNoErrorLogged(t, logs);
});
