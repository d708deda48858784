/**
 * What a browser gets from oidc-provider's endpoints while a store fails
 * (issue 12, item 1): the house 503, a page or JSON, never Koa's bare text.
 * The store is made to fail by a wrapper, at the moment that matters: the
 * resume after a sign-in, whose session save fails after the redirect to the
 * app was already decided.
 */
import type { ExecutionContext } from 'ava';
import * as client from 'openid-client';
import { StoreUnavailableError } from '../../../src/storage/errors.ts';
import type { EphemeralStore, OidcModelStore } from '../../../src/storage/types.ts';
import { InteractionClient } from '../../support/interaction-client.ts';
import { startTestServer } from '../../support/postern-server.ts';
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

/** The ephemeral store, with finding and saving the models in `failing` (oidc-provider's names) failing. */
function failingModels(ephemeral: EphemeralStore, failing: Set<string>): EphemeralStore {
  return new Proxy(ephemeral, {
    get(target, property, receiver) {
      if (property !== 'oidcModels') return Reflect.get(target, property, receiver);
      return (poolId: string): OidcModelStore => {
        const models = target.oidcModels(poolId);
        return {
          ...models,
          upsert: async (model, id, payload, expiresIn) => {
            if (failing.has(model)) throw new StoreUnavailableError('redis');
            return models.upsert(model, id, payload, expiresIn);
          },
          find: async (model, id) => {
            if (failing.has(model)) throw new StoreUnavailableError('redis');
            return models.find(model, id);
          },
        };
      };
    },
  });
}

async function serve(t: ExecutionContext<{ fixture: LoginFixture }>, poolId: string, failing: Set<string>) {
  const server = await startTestServer({
    wrapStores: ({ durable, ephemeral }) => ({ durable, ephemeral: failingModels(ephemeral, failing) }),
    pools: { [poolId]: poolFile({ firstFactor: ['email_otp'] }) },
    databaseUrl: t.context.fixture.database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: uniqueKeyPrefix(),
    env: { SMTP_URL: t.context.fixture.mail.url },
  });
  t.teardown(() => server.stop());
  const email = `ada@${poolId}.example`;
  await createUser(server, poolId, email);
  const signIn = async () => {
    const login = await InteractionClient.start(server, { poolId, clientId: 'web', redirectUri: REDIRECT });
    await login.identify(email);
    let done = await login.verifyCode(await mailedCode(login, t.context.fixture.mail, email));
    if (done.body.step === 'enroll') done = await login.skipEnroll();
    return { login, redirectTo: String(done.body.redirect_to) };
  };
  return { server, signIn };
}

test('a resume whose session cannot be saved answers the house 503: a page, or JSON', async (t) => {
  const failing = new Set<string>();
  const { server, signIn } = await serve(t, 'outage-resume', failing);

  for (const accept of ['text/html', 'application/json']) {
    const { login, redirectTo } = await signIn();
    failing.add('Session');
    const resumed = await login.browser.fetch(new URL(redirectTo, server.url), { headers: { accept } });
    failing.delete('Session');
    t.is(resumed.status, 503, accept);
    t.is(resumed.headers.get('retry-after'), '5', accept);
    t.is(resumed.headers.get('location'), null, `${accept}: no redirect, with or without a code`);
    const body = await resumed.text();
    if (accept === 'text/html') {
      t.regex(resumed.headers.get('content-type') ?? '', /^text\/html/);
      t.regex(body, /briefly unavailable/);
    } else {
      t.regex(resumed.headers.get('content-type') ?? '', /^application\/json/);
      t.like(JSON.parse(body), { error: 'temporarily_unavailable' });
    }
  }
});

test('a token request a store outage stops answers 503 temporarily_unavailable with Retry-After, not server_error', async (t) => {
  const failing = new Set<string>();
  const { signIn } = await serve(t, 'outage-token', failing);
  const { login, redirectTo } = await signIn();
  const callback = await login.followToApp(redirectTo);
  failing.add('AuthorizationCode');
  // openid-client keeps a 5xx answer whole, as the error's cause.
  const error = await t.throwsAsync(login.redeem(callback), { instanceOf: client.ClientError });
  const answer = error?.cause as Response;
  t.is(answer.status, 503);
  t.is(answer.headers.get('retry-after'), '5');
  t.like(await answer.json(), { error: 'temporarily_unavailable' });
  failing.delete('AuthorizationCode');
  // Nothing was spent: the same code still redeems once the store is back.
  const { claims } = await login.redeem(callback);
  t.truthy(claims.sub);
});
