/**
 * The interaction API without a browser: sign-up and passkey sign-in driven
 * with the software authenticator, in a smart and a classic pool.
 */
import anyTest, { type TestFn } from 'ava';
import { InteractionClient } from '../../support/interaction-client.ts';
import { type MailSink, startMailSink } from '../../support/mail-sink.ts';
import { startTestServer, type TestServer } from '../../support/postern-server.ts';
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
import { type RegistrationOverrides, SoftAuthenticator } from '../../support/soft-authenticator.ts';

const REDIRECT = 'http://127.0.0.1:8750/callback';

const poolFile = (mode: 'smart' | 'classic', attestation = 'none', authentication = '') => `
passkeys:
  mode: ${mode}
  registration:
    attestation: ${attestation}
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
${authentication}
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

interface Context {
  server: TestServer;
  database: TestDatabase;
  prefix: string;
  mail: MailSink;
}

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<Context>);

test.before(async (t) => {
  const database = await createTestDatabase();
  const prefix = uniqueKeyPrefix();
  const mail = await startMailSink();
  const { openStores } = await import('../../../src/storage/open-stores.ts');
  const stores = await openStores({
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
  });
  await stores.durable.migrate();
  await stores.close();
  const server = await startTestServer({
    pools: {
      smart: poolFile('smart'),
      classic: poolFile('classic'),
      attested: poolFile('smart', 'direct'),
      /** Passwords too (cheap argon2 for the test). */
      words: poolFile(
        'smart',
        'none',
        'authentication:\n  first_factor: [passkey, email_otp, password]\n  password:\n    argon2: { memory_kib: 8192, iterations: 1 }',
      ),
    },
    databaseUrl: database.url,
    redisUrl: redisTestUrl(),
    redisKeyPrefix: prefix,
    env: { SMTP_URL: mail.url },
  });
  t.context = { server, database, prefix, mail };
});

test.after.always(async (t) => {
  await t.context.server?.stop();
  await t.context.mail?.close();
  await t.context.database?.drop();
  if (t.context.prefix) await deleteKeysWithPrefix(t.context.prefix);
});

/** A sign-up interaction at its `enroll` step: the email proven with the mailed code. */
async function startSignUp(server: TestServer, mail: MailSink, poolId: string, email: string) {
  const login = await InteractionClient.start(server, { poolId, clientId: 'web', redirectUri: REDIRECT });
  await login.identify(email);
  await login.sendCode();
  const verified = await login.verifyCode(await mail.nextCode(email));
  if (verified.body.step !== 'enroll')
    throw new Error(`expected enroll, got ${JSON.stringify(verified.body)}`);
  return login;
}

/** Signs a new user up through the API: email code, then a passkey from `authenticator`. */
async function signUp(
  server: TestServer,
  mail: MailSink,
  poolId: string,
  email: string,
  authenticator: SoftAuthenticator,
  overrides: RegistrationOverrides = {},
) {
  const login = await InteractionClient.start(server, { poolId, clientId: 'web', redirectUri: REDIRECT });
  await login.identify(email);
  await login.sendCode();
  const verified = await login.verifyCode(await mail.nextCode(email));
  if (verified.body.step !== 'enroll')
    throw new Error(`expected enroll, got ${JSON.stringify(verified.body)}`);
  const options = await login.registerOptions();
  const registered = await login.registerVerify(
    authenticator.register(options.body as never, server.url, overrides),
  );
  return { login, answer: registered };
}

test('sign-up in a smart pool: email code, then a discoverable passkey, then a usernameless sign-in', async (t) => {
  const { server, mail } = t.context;
  const authenticator = new SoftAuthenticator();
  const { login, answer } = await signUp(server, mail, 'smart', 'grace@acme.example', authenticator);
  t.is(answer.status, 200, JSON.stringify(answer.body));
  const { claims } = await login.finish(String(answer.body.redirect_to));
  t.deepEqual(claims.amr, ['otp']);

  const again = await InteractionClient.start(server, {
    poolId: 'smart',
    clientId: 'web',
    redirectUri: REDIRECT,
  });
  t.deepEqual((await again.state()).body.step, 'identify');
  const options = await again.passkeyOptions();
  t.deepEqual(options.body.allowCredentials, [], 'smart pools ask for any discoverable passkey');
  const verified = await again.passkeyVerify(authenticator.authenticate(options.body as never, server.url));
  t.is(verified.status, 200, JSON.stringify(verified.body));
  const signedIn = await again.finish(String(verified.body.redirect_to));
  t.is(signedIn.claims.sub, claims.sub);
  t.deepEqual(signedIn.claims.amr, ['hwk', 'mfa', 'pop', 'user']);
  t.is(signedIn.claims.acr, 'phrh');
});

test('a synced passkey signs in with acr phr and amr swk', async (t) => {
  const { server, mail } = t.context;
  const authenticator = new SoftAuthenticator({ synced: true });
  await signUp(server, mail, 'smart', 'synced@acme.example', authenticator);
  const login = await InteractionClient.start(server, {
    poolId: 'smart',
    clientId: 'web',
    redirectUri: REDIRECT,
  });
  const options = await login.passkeyOptions();
  const verified = await login.passkeyVerify(authenticator.authenticate(options.body as never, server.url));
  const { claims } = await login.finish(String(verified.body.redirect_to));
  t.deepEqual(claims.amr, ['mfa', 'pop', 'swk', 'user']);
  t.is(claims.acr, 'phr');
});

test('classic pool: email first, then allowCredentials lists that user’s passkeys', async (t) => {
  const { server, mail } = t.context;
  const authenticator = new SoftAuthenticator();
  await signUp(server, mail, 'classic', 'lin@acme.example', authenticator);
  const login = await InteractionClient.start(server, {
    poolId: 'classic',
    clientId: 'web',
    redirectUri: REDIRECT,
  });
  t.deepEqual((await login.state()).body.methods, [], 'a classic pool asks for the email first');
  const identified = await login.identify('Lin@Acme.example ');
  t.is(identified.body.step, 'first_factor');
  const options = await login.passkeyOptions();
  t.deepEqual(
    options.body.allowCredentials?.map((credential) => credential.id),
    authenticator.credentials.map((credential) => credential.id.toString('base64url')),
  );
  const verified = await login.passkeyVerify(authenticator.authenticate(options.body as never, server.url));
  const { claims } = await login.finish(String(verified.body.redirect_to));
  t.is(claims.acr, 'phrh');
});

test('a pool that requires attestation refuses self attestation, which no certificate vouches for', async (t) => {
  const { server, mail } = t.context;
  const email = 'selfattest@acme.example';
  const { answer } = await signUp(server, mail, 'attested', email, new SoftAuthenticator(), {
    attestation: 'packed-self',
  });
  t.is(answer.status, 400);
  t.is(answer.body.error, 'passkey_rejected');
  t.is(await server.runtime.durable.users.findByEmail('attested', email), undefined);
  const events = await server.runtime.durable.auditEvents.list('attested', { event: 'passkey_registration' });
  t.true(
    events.some((event) => event.outcome === 'failure' && event.detail?.code === 'attestation_required'),
  );
});

test('a pool that requires attestation refuses a passkey that offers none, and creates no account', async (t) => {
  const { server, mail } = t.context;
  const { answer } = await signUp(server, mail, 'attested', 'noattest@acme.example', new SoftAuthenticator());
  t.is(answer.status, 400);
  t.is(answer.body.error, 'passkey_rejected');
  t.is(await server.runtime.durable.users.findByEmail('attested', 'noattest@acme.example'), undefined);
  const [event] = await server.runtime.durable.auditEvents.list('attested', {
    event: 'passkey_registration',
  });
  t.is(event?.detail?.code, 'attestation_required');
});

test('a sign-up keeps one WebAuthn user handle: asked twice, the options carry the same user.id, and its passkey signs in', async (t) => {
  // An authenticator keeps one passkey per (RP ID, user.id): a second user.id
  // would leave the first passkey beside the new one, an orphan that never works.
  const { server, mail } = t.context;
  const email = 'twice@acme.example';
  const login = await startSignUp(server, mail, 'smart', email);
  const first = await login.registerOptions();
  const second = await login.registerOptions();
  t.is(first.status, 200);
  t.is(second.body.user.id, first.body.user.id, 'the same user handle both times');
  t.not(second.body.challenge, first.body.challenge, 'each options call has its own challenge');

  const authenticator = new SoftAuthenticator();
  const registered = await login.registerVerify(authenticator.register(second.body as never, server.url));
  t.is(registered.status, 200, JSON.stringify(registered.body));
  const user = await server.runtime.durable.users.findByEmail('smart', email);
  t.is(user?.webauthnUserId, first.body.user.id, 'the account has the handle its options gave');
  const { claims } = await login.finish(String(registered.body.redirect_to));

  const again = await InteractionClient.start(server, {
    poolId: 'smart',
    clientId: 'web',
    redirectUri: REDIRECT,
  });
  const options = await again.passkeyOptions();
  const verified = await again.passkeyVerify(authenticator.authenticate(options.body as never, server.url));
  t.is(verified.status, 200, JSON.stringify(verified.body));
  t.is((await again.finish(String(verified.body.redirect_to))).claims.sub, claims.sub);
});

test('a sign-up that asked for passkey options and then chose a password or skipped keeps that handle', async (t) => {
  const { server, mail } = t.context;
  const password = await startSignUp(server, mail, 'words', 'words@acme.example');
  const passwordOptions = await password.registerOptions();
  const chosen = await password.post('/password', { password: 'a long enough password' });
  t.is(chosen.status, 200, JSON.stringify(chosen.body));
  const withPassword = await server.runtime.durable.users.findByEmail('words', 'words@acme.example');
  t.is(withPassword?.webauthnUserId, passwordOptions.body.user.id);

  const skip = await startSignUp(server, mail, 'smart', 'skipper@acme.example');
  const skipOptions = await skip.registerOptions();
  const skipped = await skip.skipEnroll();
  t.is(skipped.status, 200, JSON.stringify(skipped.body));
  const withoutPasskey = await server.runtime.durable.users.findByEmail('smart', 'skipper@acme.example');
  t.is(withoutPasskey?.webauthnUserId, skipOptions.body.user.id);
});
