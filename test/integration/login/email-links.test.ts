/**
 * Email links as a delivery of one-time codes (`authentication.email_otp.
 * delivery`), through the interaction API: what the mail carries for each
 * delivery, and the page the link opens. The browser side (entering the code
 * where it was asked for, showing it elsewhere) is test/e2e/email-link.test.ts.
 */
import { createUser, loginTests, REDIRECT, startLogin } from './login-fixture.ts';

const test = await loginTests();

const pool = (delivery: string) => `
display_name: Acme
passkeys:
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [email_otp, passkey]
  email_otp:
    delivery: ${delivery}
enrollment:
  offer_passkey: false
clients:
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: ["${REDIRECT}"]
    scope: openid email
    first_party: true
`;

/** The mail's source with quoted-printable undone. */
const textOf = (raw: string) => raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');

for (const [delivery, { link, code }] of [
  ['code', { link: false, code: true }],
  ['link', { link: true, code: false }],
  ['both', { link: true, code: true }],
] as const) {
  test(`delivery ${delivery}: the mail carries ${[link && 'a link', code && 'the code'].filter(Boolean).join(' and ')}`, async (t) => {
    const id = `links-${delivery}`;
    const { server } = await t.context.fixture.start(t, { [id]: pool(delivery) });
    const email = `ada@${id}.example`;
    await createUser(server, id, email);
    const login = await startLogin(server, id);
    await login.identify(email);
    const sent = await login.sendCode();
    t.like(sent.body, { code_sent: true, code_delivery: delivery });
    const text = textOf((await t.context.fixture.mail.next(email)).raw);
    const found = /(https?:\/\/\S+\/interaction\/([^/\s]+)\/email-link)#code=(\d{6})/.exec(text);
    t.is(found !== null, link, text.slice(0, 400));
    if (found) {
      const [, url, uid, value] = found;
      t.is(uid, login.uid, 'the link names this interaction');
      const page = await fetch(url!);
      t.is(page.status, 200);
      t.regex(await page.text(), /\/assets\/email-link\.js/);
      // What the page does in the browser that asked: the code from the link, as if typed.
      const verified = await login.verifyCode(value!);
      t.truthy(verified.body.redirect_to, JSON.stringify(verified.body));
    }
    t.is(/Subject: Your Acme sign-in code: \d{6}/.test(text), delivery === 'code');
    t.is(/Or enter this code there: \d{6}/.test(text), delivery === 'both');
  });
}

test('the link page of an unknown pool is a 404', async (t) => {
  const { server } = await t.context.fixture.start(t, { 'links-any': pool('link') });
  t.is((await fetch(`${server.url}/no-such-pool/interaction/abc/email-link`)).status, 404);
});
