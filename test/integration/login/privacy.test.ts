/**
 * Account privacy: nothing the interaction API answers tells whether an
 * email has an account or passkeys. Identify, passkey options and code
 * sending answer alike for known and unknown emails, in content and (within
 * a generous bound) in time; only the mailbox learns, and only when a code
 * may be sent to it.
 */
import anyTest, { type TestFn } from 'ava';
import type { InteractionClient } from '../../support/interaction-client.ts';
import { probePostgres, probeRedis, serviceTest } from '../../support/services.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';
import {
  createUser,
  createUserWithPasskey,
  type LoginFixture,
  openLoginFixture,
  poolFile,
  receivedMail,
  signUp,
  startLogin,
  TaggedBrowser,
  withoutEmail,
} from './login-fixture.ts';

interface Context {
  fixture: LoginFixture;
}

const probes = await Promise.all([probePostgres(), probeRedis()]);
const test = probes.reduce((fn, probe) => serviceTest(fn, probe), anyTest as TestFn<Context>);

test.before(async (t) => {
  t.context.fixture = await openLoginFixture();
});

test.after.always(async (t) => {
  await t.context.fixture?.close();
});

type Options = {
  allowCredentials?: Array<{ id: string; type: string; transports?: string[] }>;
  [key: string]: unknown;
};

/**
 * What an observer can compare between two option answers, leaving out the
 * random and the per-email parts. How many credentials, and their id lengths
 * and transports, vary per email for decoys as for real users: the unit test
 * of decoy-credentials checks that mix.
 */
function shapeOf(status: number, options: Options) {
  const keys = Object.keys(options).sort();
  return {
    status,
    keys,
    types: keys.map((key) => `${key}:${Array.isArray(options[key]) ? 'array' : typeof options[key]}`),
    rpId: options.rpId,
    userVerification: options.userVerification,
    timeout: options.timeout,
    credentials: [
      ...new Set(
        (options.allowCredentials ?? []).map((credential) =>
          JSON.stringify({
            keys: Object.keys(credential).sort(),
            type: credential.type,
            base64url: /^[A-Za-z0-9_-]+$/.test(credential.id),
          }),
        ),
      ),
    ],
  };
}

const idsOf = (options: Options) => (options.allowCredentials ?? []).map((credential) => credential.id);

test.serial(
  'known and unknown emails take the same time for passkey options and for code sending',
  async (t) => {
    const { fixture } = t.context;
    // trust_proxy: each request names its own client address, so 40 code requests stay under the
    // per-address limits (which would otherwise answer 429 and skew the timing).
    const { server } = await fixture.start(
      t,
      {
        'time-options': poolFile({ mode: 'classic' }),
        'time-send': poolFile({ mode: 'classic', registration: 'invite_only' }),
      },
      { server: 'trust_proxy: true' },
    );
    const rounds = 20;
    await createUserWithPasskey(server, 'time-options', 'timed@acme.example');
    await Promise.all(
      Array.from({ length: rounds + 2 }, (_, i) =>
        createUser(server, 'time-send', `known-${i}@acme.example`),
      ),
    );

    let address = 0;
    const browser = () => new TaggedBrowser({ 'x-forwarded-for': '10.0.0.1' });
    const timed = async (
      login: InteractionClient,
      call: (login: InteractionClient) => Promise<{ status: number }>,
    ) => {
      address += 1;
      (login.browser as TaggedBrowser).headers['x-forwarded-for'] = `10.1.${address >> 8}.${address & 255}`;
      const started = performance.now();
      const { status } = await call(login);
      const elapsed = performance.now() - started;
      if (status !== 200) throw new Error(`timed call answered ${status}`);
      return elapsed;
    };
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return (
        ((sorted[Math.floor((sorted.length - 1) / 2)] ?? 0) +
          (sorted[Math.ceil((sorted.length - 1) / 2)] ?? 0)) /
        2
      );
    };
    /** Alternates known and unknown (which goes first alternates too) and returns both medians. */
    const race = async (
      known: (i: number) => Promise<number>,
      unknown: (i: number) => Promise<number>,
    ): Promise<[number, number]> => {
      const k: number[] = [];
      const u: number[] = [];
      for (let i = 0; i < rounds; i++) {
        if (i % 2 === 0) {
          k.push(await known(i));
          u.push(await unknown(i));
        } else {
          u.push(await unknown(i));
          k.push(await known(i));
        }
      }
      return [median(k), median(u)];
    };

    // Passkey options: a user's credentials from the database vs. decoys computed in memory.
    const knownLogin = await startLogin(server, 'time-options', { browser: browser() });
    const unknownLogin = await startLogin(server, 'time-options', { browser: browser() });
    await knownLogin.identify('timed@acme.example');
    await unknownLogin.identify('untimed@acme.example');
    for (let warm = 0; warm < 3; warm++) {
      await timed(knownLogin, (login) => login.passkeyOptions());
      await timed(unknownLogin, (login) => login.passkeyOptions());
    }
    const [knownOptions, unknownOptions] = await race(
      () => timed(knownLogin, (login) => login.passkeyOptions()),
      () => timed(unknownLogin, (login) => login.passkeyOptions()),
    );

    // Code sending in an invite-only pool: a code issued and mailed vs. nothing issued.
    const knownSender = await startLogin(server, 'time-send', { browser: browser() });
    const unknownSender = await startLogin(server, 'time-send', { browser: browser() });
    await timed(knownSender, (login) => login.sendCode(`known-${rounds}@acme.example`));
    await timed(unknownSender, (login) => login.sendCode(`unknown-${rounds}@acme.example`));
    const [knownSend, unknownSend] = await race(
      (i) => timed(knownSender, (login) => login.sendCode(`known-${i}@acme.example`)),
      (i) => timed(unknownSender, (login) => login.sendCode(`unknown-${i}@acme.example`)),
    );

    t.log(
      `passkey/options median: known ${knownOptions.toFixed(1)} ms, unknown ${unknownOptions.toFixed(1)} ms`,
    );
    t.log(`email-otp/send median: known ${knownSend.toFixed(1)} ms, unknown ${unknownSend.toFixed(1)} ms`);
    // A generous bound: the paths differ by a query or a Redis write (well under a millisecond
    // here), and this must hold on a loaded two-core CI machine running other test files. A
    // leak worth worrying about (an awaited SMTP delivery, a password hash) costs far more.
    t.true(Math.abs(knownOptions - unknownOptions) < 25, 'passkey options take as long for both');
    t.true(Math.abs(knownSend - unknownSend) < 25, 'sending a code takes as long for both');
  },
);

test('classic pool: passkey options for unknown emails look like those for users with and without passkeys', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, { decoys: poolFile({ mode: 'classic' }) });
  const authenticator = new SoftAuthenticator();
  // Browsers report transports sorted (https://www.w3.org/TR/webauthn-3/#dom-authenticatorattestationresponse-gettransports).
  await signUp(server, fixture.mail, 'decoys', 'kim@acme.example', authenticator, {
    transports: ['hybrid', 'internal'],
  });
  await createUser(server, 'decoys', 'nokey@acme.example');

  const ask = async (email: string) => {
    const login = await startLogin(server, 'decoys');
    const identified = await login.identify(email);
    const options = await login.passkeyOptions();
    return { identified, status: options.status, options: options.body as Options };
  };
  const known = await ask('kim@acme.example');
  const noPasskey = await ask('nokey@acme.example');
  const noPasskeyAgain = await ask('NoKey@acme.example');
  const unknown = await ask('ghost@acme.example');
  const unknownAgain = await ask(' ghost@ACME.example');
  const otherUnknown = await ask('phantom@acme.example');

  const expected = shapeOf(known.status, known.options);
  t.is(known.status, 200);
  t.deepEqual(
    idsOf(known.options),
    authenticator.credentials.map((credential) => credential.id.toString('base64url')),
  );
  for (const [name, answer] of Object.entries({
    noPasskey,
    noPasskeyAgain,
    unknown,
    unknownAgain,
    otherUnknown,
  })) {
    t.is(answer.identified.status, known.identified.status, name);
    t.deepEqual(withoutEmail(answer.identified.body), withoutEmail(known.identified.body), name);
    t.true(idsOf(answer.options).length > 0, `${name}: allowCredentials is never empty`);
    t.deepEqual(shapeOf(answer.status, answer.options), expected, name);
  }

  // Decoys are stable per email, differ between emails, and never name a real credential.
  t.deepEqual(idsOf(unknownAgain.options), idsOf(unknown.options));
  t.deepEqual(idsOf(noPasskeyAgain.options), idsOf(noPasskey.options));
  t.notDeepEqual(idsOf(otherUnknown.options), idsOf(unknown.options));
  t.notDeepEqual(idsOf(noPasskey.options), idsOf(unknown.options));
  const real = new Set(idsOf(known.options));
  t.false(
    [unknown, noPasskey, otherUnknown].some((answer) => idsOf(answer.options).some((id) => real.has(id))),
  );
});

test('identify answers the same for known and unknown emails', async (t) => {
  const { fixture } = t.context;
  const { server } = await fixture.start(t, {
    'ident-classic': poolFile({ mode: 'classic' }),
    'ident-smart': poolFile({ mode: 'smart' }),
  });
  for (const poolId of ['ident-classic', 'ident-smart']) {
    const authenticator = new SoftAuthenticator();
    await signUp(server, fixture.mail, poolId, `lee@${poolId}.example`, authenticator);
    await createUser(server, poolId, `nokey@${poolId}.example`);

    const answers = [];
    for (const email of [`lee@${poolId}.example`, `nokey@${poolId}.example`, `nobody@${poolId}.example`]) {
      const login = await startLogin(server, poolId);
      const identified = await login.identify(email.toUpperCase());
      const state = await login.state();
      t.is(identified.body.email, email, 'the email is echoed, normalised');
      answers.push({
        status: identified.status,
        body: withoutEmail(identified.body),
        state: withoutEmail(state.body),
      });
    }
    t.is(answers[0]?.status, 200);
    t.deepEqual(answers[1], answers[0], `${poolId}: a user without passkeys`);
    t.deepEqual(answers[2], answers[0], `${poolId}: no user`);
  }
});

test('sending a code answers the same for known and unknown emails; only a mailbox that may get a code gets one', async (t) => {
  const { fixture } = t.context;
  const { mail } = fixture;
  const { server } = await fixture.start(t, {
    'send-invite': poolFile({ mode: 'classic', registration: 'invite_only' }),
    'send-open': poolFile({ mode: 'classic', registration: 'open' }),
  });
  await createUser(server, 'send-invite', 'member@send-invite.example');
  await createUser(server, 'send-open', 'member@send-open.example');

  const send = async (poolId: string, email: string) => {
    const login = await startLogin(server, poolId);
    const identified = await login.identify(email);
    const sent = await login.sendCode();
    return { identified: withoutEmail(identified.body), status: sent.status, body: withoutEmail(sent.body) };
  };

  // Invite-only: the stranger's request is answered like the member's, and no mail goes out.
  const stranger = await send('send-invite', 'stranger@send-invite.example');
  const member = await send('send-invite', 'member@send-invite.example');
  t.is(member.status, 200);
  t.like(member.body, { step: 'first_factor', code_sent: true });
  t.deepEqual(stranger, member);
  const memberMail = await mail.next('member@send-invite.example');
  t.regex(memberMail.raw, /sign-in code/);
  t.false(
    await receivedMail(mail, 'stranger@send-invite.example'),
    'no mail for an address without an account',
  );

  // Open registration: both get mail (a sign-in code, a sign-up code), and only the mailbox tells which.
  const newcomer = await send('send-open', 'newcomer@send-open.example');
  const regular = await send('send-open', 'member@send-open.example');
  t.deepEqual(newcomer, regular);
  t.regex((await mail.next('member@send-open.example')).raw, /sign-in code/);
  t.regex((await mail.next('newcomer@send-open.example')).raw, /Confirm your email/);
});
