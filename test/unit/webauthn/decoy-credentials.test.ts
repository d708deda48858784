import { randomBytes } from 'node:crypto';
import test from 'ava';
import { decoyCredentials } from '../../../src/webauthn/decoy-credentials.ts';

const key = randomBytes(32);
const emails = Array.from({ length: 2000 }, (_, i) => `person${i}@example.com`);
const lists = emails.map((email) => decoyCredentials(key, 'pool', email));
const shape = (list: ReturnType<typeof decoyCredentials>) =>
  list.map(
    (credential) => `${Buffer.from(credential.credentialId, 'base64url').length}:${credential.transports}`,
  );

test('decoys are stable per email and differ between emails and pools', (t) => {
  t.deepEqual(decoyCredentials(key, 'pool', emails[0] ?? ''), lists[0]);
  t.notDeepEqual(decoyCredentials(key, 'other', emails[0] ?? ''), lists[0]);
  t.notDeepEqual(decoyCredentials(randomBytes(32), 'pool', emails[0] ?? ''), lists[0]);
  t.is(new Set(lists.flat().map((credential) => credential.credentialId)).size, lists.flat().length);
});

test('decoy lists vary in length the way real users do: one passkey is likeliest, up to five', (t) => {
  const counts = new Map<number, number>();
  for (const list of lists) counts.set(list.length, (counts.get(list.length) ?? 0) + 1);
  t.deepEqual([...counts.keys()].sort(), [1, 2, 3, 4, 5]);
  const share = (n: number) => (counts.get(n) ?? 0) / lists.length;
  t.true(share(1) > 0.4 && share(1) < 0.6, `one passkey: ${share(1)}`);
  t.true(share(1) > share(2) && share(2) > share(3) && share(3) > share(5));
});

test('decoy credentials take the shapes of common authenticators', (t) => {
  const shapes = new Set(lists.flatMap(shape));
  for (const common of ['16:hybrid,internal', '20:hybrid,internal', '32:internal', '64:nfc,usb', '64:usb']) {
    t.true(shapes.has(common), common);
  }
  // A user with a security key and a synced passkey has look-alikes among unknown emails.
  t.true(lists.some((list) => shape(list).join(' ') === '64:nfc,usb 16:hybrid,internal'));
});
