/**
 * Authorization and PAR parameters that no store can keep (issue 8, item 11),
 * against real PostgreSQL and Redis: U+0000 in any parameter, and `claims`
 * JSON whose escapes spell U+0000 or an unpaired surrogate. They went into
 * the interaction, the code and the refresh token, and the sign-in ended in a
 * 500 at /token, where PostgreSQL's jsonb refused the refresh token. Now
 * oidc-provider refuses them with invalid_request at the door: redirected to
 * the app from /auth, answered as JSON from the PAR endpoint; nothing is
 * stored and nothing errors in the log.
 */
import type { ExecutionContext } from 'ava';
import * as client from 'openid-client';
import type { DurableStore, OidcModelStore } from '../../../src/storage/types.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import { captureLogs, LEVEL } from '../../support/log-capture.ts';
import {
  type StartTestServerOptions,
  startTestServer,
  type TestServer,
} from '../../support/postern-server.ts';
import { redisTestUrl, uniqueKeyPrefix } from '../../support/services.ts';
import {
  createUser,
  type LoginFixture,
  loginTests,
  mailedCode,
  poolFile,
  REDIRECT,
} from '../login/login-fixture.ts';

const test = await loginTests();

/** The login fixture's pool with refresh tokens for `web`, so a sign-in reaches PostgreSQL at /token. */
const pool = poolFile({ firstFactor: ['email_otp'] }).replace(
  '    scope: openid email\n    first_party: true\n',
  '    scope: openid email offline_access\n    grant_types: [authorization_code, refresh_token]\n    first_party: true\n',
);

async function serve(
  t: ExecutionContext<{ fixture: LoginFixture }>,
  poolId: string,
  wrapStores?: StartTestServerOptions['wrapStores'],
) {
  const logs = captureLogs('info');
  const server = await startTestServer({
    ...(wrapStores ? { wrapStores } : {}),
    pools: { [poolId]: pool },
    server: 'database:\n  pool_max: 2\n',
    databaseUrl: t.context.fixture.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: uniqueKeyPrefix(),
    env: { SMTP_URL: t.context.fixture.mail.url },
    logger: logs.logger,
  });
  t.teardown(() => server.stop());
  return { server, logs };
}

const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

function authorizeUrl(server: TestServer, poolId: string, params: Record<string, string>): URL {
  const url = new URL(`${server.issuer(poolId)}/auth`);
  for (const [key, value] of Object.entries({
    client_id: 'web',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid email',
    state: 'st-1',
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
    ...params,
  }))
    url.searchParams.set(key, value);
  return url;
}

const UNSTORABLE: Array<[string, Record<string, string>]> = [
  ['nonce=%00', { nonce: '\u0000' }],
  ['U+0000 inside the nonce', { nonce: 'abc\u0000def' }],
  ['U+0000 in login_hint', { login_hint: 'ada@example.com\u0000' }],
  ['U+0000 in acr_values', { acr_values: 'phr\u0000' }],
  ['U+0000 in the organization', { organization: 'a\u0000b' }],
  ['U+0000 in state', { state: 'st\u0000' }],
  ['claims with a lone surrogate value', { claims: '{"id_token":{"email":{"value":"\\ud800"}}}' }],
  ['claims with a lone low surrogate', { claims: '{"userinfo":{"email":{"values":["a\\udc00"]}}}' }],
  ['claims with an escaped U+0000', { claims: '{"id_token":{"email":{"value":"a\\u0000"}}}' }],
  ['claims with a lone surrogate key', { claims: '{"id_token":{"\\ud800":null}}' }],
];

test('an authorization request with U+0000 or an unpaired surrogate is sent back to the app with invalid_request, storing nothing', async (t) => {
  const { server, logs } = await serve(t, 'unstorable-auth');
  for (const [label, params] of UNSTORABLE) {
    const response = await fetch(authorizeUrl(server, 'unstorable-auth', params), { redirect: 'manual' });
    t.is(response.status, 303, label);
    const location = new URL(response.headers.get('location') ?? '', server.url);
    t.is(`${location.origin}${location.pathname}`, REDIRECT, `${label}: back to the app`);
    t.is(location.searchParams.get('error'), 'invalid_request', label);
    t.regex(location.searchParams.get('error_description') ?? '', /U\+0000|Unicode/, label);
    t.is(response.headers.get('set-cookie'), null, `${label}: no interaction started`);
  }
  // A surrogate pair is well formed: an emoji in claims starts a sign-in.
  const fine = await fetch(
    authorizeUrl(server, 'unstorable-auth', { claims: '{"id_token":{"email":{"value":"\\ud83d\\ude00"}}}' }),
    { redirect: 'manual' },
  );
  t.is(fine.status, 303);
  t.regex(fine.headers.get('location') ?? '', /\/interaction\//);
  t.deepEqual(
    logs.lines.filter((line) => line.level >= LEVEL.error),
    [],
    'no error in the log',
  );
});

test('a pushed authorization request with U+0000 or an unpaired surrogate answers 400 invalid_request', async (t) => {
  const { server } = await serve(t, 'unstorable-par');
  const push = (params: Record<string, string>) =>
    fetch(`${server.issuer('unstorable-par')}/request`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams([...authorizeUrl(server, 'unstorable-par', params).searchParams]).toString(),
    });
  for (const [label, params] of UNSTORABLE) {
    const response = await push(params);
    t.is(response.status, 400, label);
    t.like(await response.json(), { error: 'invalid_request' }, label);
  }
  const pushed = await push({ nonce: 'n-1' });
  t.is(pushed.status, 201);
  t.regex(((await pushed.json()) as { request_uri?: string }).request_uri ?? '', /^urn:/);
});

test('a sign-in whose claims are well formed still reaches /token, which stores its refresh token', async (t) => {
  const { server, logs } = await serve(t, 'unstorable-flow');
  const email = 'ada@unstorable-flow.example';
  await createUser(server, 'unstorable-flow', email);
  const login = await InteractionClient.start(server, {
    poolId: 'unstorable-flow',
    clientId: 'web',
    redirectUri: REDIRECT,
    scope: 'openid email offline_access',
    params: {
      prompt: 'consent',
      claims: '{"id_token":{"email":{"essential":true,"value":"😀 \\ud83d\\ude00"}}}',
    },
  });
  await login.identify(email);
  let done = await login.verifyCode(await mailedCode(login, t.context.fixture.mail, email));
  if (done.body.step === 'enroll') done = await login.skipEnroll();
  const { tokens } = await login.finish(String(done.body.redirect_to));
  t.is(typeof tokens.refresh_token, 'string');
  t.deepEqual(
    logs.lines.filter((line) => line.level >= LEVEL.error),
    [],
  );
});

/** The durable store, with U+0000 slipped into every refresh token on its way in: text the door missed. */
function slipNul(durable: DurableStore): DurableStore {
  return new Proxy(durable, {
    get(target, property, receiver) {
      if (property !== 'oidcModels') return Reflect.get(target, property, receiver);
      return (poolId: string): OidcModelStore => {
        const models = target.oidcModels(poolId);
        return {
          ...models,
          upsert: (model, id, payload, expiresIn) =>
            models.upsert(
              model,
              id,
              model === 'RefreshToken' ? { ...payload, nonce: 'x\u0000' } : payload,
              expiresIn,
            ),
        };
      };
    },
  });
}

test('should such text reach a refresh token anyway, /token answers 400 invalid_request, not a 500', async (t) => {
  const { server, logs } = await serve(t, 'unstorable-backstop', ({ durable, ephemeral }) => ({
    durable: slipNul(durable),
    ephemeral,
  }));
  const email = 'ada@unstorable-backstop.example';
  await createUser(server, 'unstorable-backstop', email);
  const login = await InteractionClient.start(server, {
    poolId: 'unstorable-backstop',
    clientId: 'web',
    redirectUri: REDIRECT,
    scope: 'openid email offline_access',
    params: { prompt: 'consent' },
  });
  await login.identify(email);
  let done = await login.verifyCode(await mailedCode(login, t.context.fixture.mail, email));
  if (done.body.step === 'enroll') done = await login.skipEnroll();
  const error = await t.throwsAsync(login.finish(String(done.body.redirect_to)), {
    instanceOf: client.ResponseBodyError,
  });
  t.like(error, { status: 400, error: 'invalid_request' });
  t.deepEqual(
    logs.lines.filter((line) => line.level >= LEVEL.error),
    [],
    'no error (and no stack) in the log',
  );
});
