/**
 * The pool-wide ceiling on stored passkeys (`passkeys.registration.max_per_pool`):
 * once the pool stores that many, every way of adding one is refused with
 * 409 `passkey_pool_full` after its ceremony verified — a sign-up (which then
 * creates no user), the login flow's offer to an existing user, and the
 * self-service API — and each refusal is audited with its refusal code and
 * spends the challenge, as any refused registration does.
 */
import type { ExecutionContext } from 'ava';
import type { TestServer } from '../../support/postern-server.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  createUser,
  createUserWithPasskey,
  type LoginFixture,
  loginTests,
  mailedCode,
  poolFile,
  signUp,
  startLogin,
} from '../login/login-fixture.ts';

const test = await loginTests();

const POOL_FULL = {
  error: 'passkey_pool_full',
  error_description: 'This service cannot store more passkeys right now. Contact its operator.',
};

/** A server with one pool, `poolId`, that stores at most `maxPerPool` passkeys. */
async function serve(t: ExecutionContext<{ fixture: LoginFixture }>, poolId: string, maxPerPool: number) {
  const file = poolFile().replace('  rp:', `  registration:\n    max_per_pool: ${maxPerPool}\n  rp:`);
  const { server } = await t.context.fixture.start(t, { [poolId]: file });
  return server;
}

/** The pool's refused registrations: who (null at sign-up) and the refusal code. */
async function refusals(server: TestServer, poolId: string) {
  const events = await server.runtime.durable.auditEvents.list(poolId, { event: 'passkey_registration' });
  return events
    .filter((event) => event.outcome === 'failure')
    .map((event) => ({ userId: event.userId, code: event.detail?.code }));
}

test('at the ceiling a sign-up is refused with passkey_pool_full and creates no user', async (t) => {
  const poolId = 'ceiling-signup';
  const server = await serve(t, poolId, 1);
  const { mail } = t.context.fixture;
  await signUp(server, mail, poolId, 'ada@acme.example', new SoftAuthenticator());
  const before = await t.context.fixture.accounts(poolId);
  t.is(before.passkeys.length, 1);

  const login = await startLogin(server, poolId);
  await login.identify('bob@acme.example');
  const verified = await login.verifyCode(await mailedCode(login, mail, 'bob@acme.example'));
  t.like(verified.body, { step: 'enroll', reason: 'signup' });
  const options = await login.registerOptions();
  t.is(options.status, 200);
  const response = new SoftAuthenticator().register(options.body as never, server.url);
  const refused = await login.registerVerify(response);
  t.like(refused, { status: 409, body: POOL_FULL });

  t.is(await server.runtime.durable.users.findByEmail(poolId, 'bob@acme.example'), undefined);
  const after = await t.context.fixture.accounts(poolId);
  t.deepEqual(after.users, before.users, 'no user was created');
  t.deepEqual(after.passkeys, before.passkeys);
  t.deepEqual(await refusals(server, poolId), [{ userId: null, code: 'passkey_pool_full' }]);

  const replayed = await login.registerVerify(response);
  t.like(replayed, { status: 400, body: { error: 'passkey_rejected' } }, 'the challenge was spent');
  t.is((await login.state()).body.step, 'enroll', 'the sign-up is still at its passkey');
});

test('at the ceiling the passkey offered to an existing user is refused, and the login goes on without one', async (t) => {
  const poolId = 'ceiling-offer';
  const server = await serve(t, poolId, 1);
  const { mail } = t.context.fixture;
  await createUserWithPasskey(server, poolId, 'ada@acme.example');
  const olu = await createUser(server, poolId, 'olu@acme.example');

  const login = await startLogin(server, poolId);
  await login.identify(olu.email);
  const verified = await login.verifyCode(await mailedCode(login, mail, olu.email));
  t.like(verified.body, { step: 'enroll', reason: 'offer' });
  const options = await login.registerOptions();
  const refused = await login.registerVerify(
    new SoftAuthenticator().register(options.body as never, server.url),
  );
  t.like(refused, { status: 409, body: POOL_FULL });
  t.is(await server.runtime.durable.passkeys.countByUser(poolId, olu.id), 0);
  t.deepEqual(await refusals(server, poolId), [{ userId: olu.id, code: 'passkey_pool_full' }]);

  const skipped = await login.skipEnroll();
  t.is(skipped.status, 200, JSON.stringify(skipped.body));
  const { claims } = await login.finish(String(skipped.body.redirect_to));
  t.is(claims.sub, olu.id);
});

test('at the ceiling a self-service registration is refused with passkey_pool_full and stores nothing', async (t) => {
  const poolId = 'ceiling-self';
  const server = await serve(t, poolId, 1);
  const authenticator = new SoftAuthenticator();
  const { login, answer } = await signUp(
    server,
    t.context.fixture.mail,
    poolId,
    // Not another test's address: the file's tests share one mailbox and run at once.
    'cy@acme.example',
    authenticator,
  );
  const { tokens, claims } = await login.finish(String(answer.body.redirect_to));
  const call = async (path: string, json: unknown) => {
    const response = await fetch(`${server.url}/${poolId}/api/self/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify(json),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  const options = await call('passkeys/register/options', {});
  t.is(options.status, 200, JSON.stringify(options.body));
  const response = new SoftAuthenticator().register(options.body as never, server.url);
  const refused = await call('passkeys/register/verify', { response });
  t.like(refused, { status: 409, body: POOL_FULL });
  t.is(await server.runtime.durable.passkeys.countByUser(poolId, claims.sub), 1);
  t.deepEqual(await refusals(server, poolId), [{ userId: claims.sub, code: 'passkey_pool_full' }]);

  const replayed = await call('passkeys/register/verify', { response });
  t.like(replayed, { status: 400, body: { error: 'passkey_rejected' } }, 'the challenge was spent');
});
