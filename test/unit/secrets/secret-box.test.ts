import test from 'ava';
import { createSecretBox } from '../../../src/secrets/secret-box.ts';

const SECRET = 'a-test-secret-that-is-at-least-32-characters';

test('opens what it sealed, and never produces the same ciphertext twice', (t) => {
  const box = createSecretBox(SECRET, 'purpose');
  const a = box.seal('private key', 'row:1');
  t.not(a, box.seal('private key', 'row:1'));
  t.is(box.open(a, 'row:1'), 'private key');
  t.false(a.includes('private'));
});

test('refuses a value moved to another row, another purpose or another secret', (t) => {
  const sealed = createSecretBox(SECRET, 'purpose').seal('private key', 'row:1');
  t.throws(() => createSecretBox(SECRET, 'purpose').open(sealed, 'row:2'), { message: /does not open/ });
  t.throws(() => createSecretBox(SECRET, 'other').open(sealed, 'row:1'), { message: /does not open/ });
  t.throws(() => createSecretBox(`${SECRET}!`, 'purpose').open(sealed, 'row:1'), {
    message: /does not open/,
  });
});

test('refuses a tampered value', (t) => {
  const box = createSecretBox(SECRET, 'purpose');
  const sealed = box.seal('private key', 'row:1');
  const [version, iv, body] = sealed.split('.');
  const flipped = Buffer.from(body ?? '', 'base64url');
  flipped[0] = (flipped[0] ?? 0) ^ 1;
  t.throws(() => box.open(`${version}.${iv}.${flipped.toString('base64url')}`, 'row:1'));
});
