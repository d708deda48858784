/**
 * Without SMTP_URL, a newcomer reads their code in the console (issue 8, item
 * 19): each message is one line that says it, `Email code for …: 123456`, a
 * notice the pretty console sets apart (bold, `>>>`, blank lines either side),
 * not a JSON blob or a paragraph.
 */
import { Writable } from 'node:stream';
import test from 'ava';
import { createMailer } from '../../../src/email/mailer.ts';
import { createLogger } from '../../../src/logging/create-logger.ts';

function capture(options: { level: string; pretty: boolean }) {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    logger: createLogger({ ...options, destination }),
    lines: () => text.split('\n').filter(Boolean),
    text: () => text,
  };
}

const message = {
  to: 'ada@example.com',
  subject: 'Your Acme sign-in code: 123456',
  text: 'Use this code to sign in to Acme:\n\n    123456\n\nIt expires in 10 minutes.\n',
  code: '123456',
};

test('without SMTP, an email code is one info line that says it, also in JSON', async (t) => {
  const { logger, lines } = capture({ level: 'info', pretty: false });
  await createMailer({ from: 'id@example.com', logger }).send(message);
  t.is(lines().length, 1, lines().join('\n'));
  const line = JSON.parse(lines()[0] ?? '{}');
  t.like(line, { level: 30, notice: 'email', msg: 'Email code for ada@example.com: 123456' });
});

test('the pretty console sets it apart without colors, and prints the whole message only at debug', async (t) => {
  const info = capture({ level: 'info', pretty: true });
  const mailer = createMailer({ from: 'id@example.com', logger: info.logger });
  info.logger.info('GET /demo/auth 303 2ms');
  await mailer.send(message);
  info.logger.info('POST /demo/interaction/x/email-otp/send 200 4ms');
  // The test's stream is never colored, as with NO_COLOR: a mark and blank lines either side.
  t.regex(
    info.text(),
    /INFO: GET \/demo\/auth 303 2ms\n\n\[[\d:.]+\] INFO: >>> Email code for ada@example\.com: 123456\n\n\[[\d:.]+\] INFO: POST /,
  );

  const debug = capture({ level: 'debug', pretty: true });
  await createMailer({ from: 'id@example.com', logger: debug.logger }).send(message);
  t.true(debug.lines().some((line) => line.includes('Use this code to sign in to Acme:')));
});

test('a message without a code names its link, or else its subject', async (t) => {
  const { logger, lines } = capture({ level: 'info', pretty: false });
  const mailer = createMailer({ from: 'id@example.com', logger });
  await mailer.send({
    to: 'ada@example.com',
    subject: 'Set up your passkey',
    text: '…',
    link: 'https://id.example/enrol/x',
  });
  await mailer.send({ to: 'ada@example.com', subject: 'You already have an Acme account', text: '…' });
  t.deepEqual(
    lines().map((line) => JSON.parse(line).msg),
    [
      'Email link for ada@example.com: https://id.example/enrol/x',
      'Email to ada@example.com: You already have an Acme account',
    ],
  );
});
