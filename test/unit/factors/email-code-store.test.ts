import test from 'ava';
import { CODE_TTL_SECONDS, issueCode, redeemCode } from '../../../src/factors/email-code/email-code-store.ts';
import { openMemoryEphemeralStore } from '../../../src/storage/memory/memory-ephemeral-store.ts';

const scope = { poolId: 'acme', uid: 'interaction-1' };
const issuedAt = Date.UTC(2026, 11, 2, 12, 0, 0);

test('a code is redeemed once within its ten minutes, by the caller’s clock', async (t) => {
  const store = openMemoryEphemeralStore();
  const code = await issueCode(store, { ...scope, email: 'ada@acme.example', now: issuedAt });
  const justInTime = issuedAt + CODE_TTL_SECONDS * 1000 - 1;
  t.deepEqual(await redeemCode(store, { ...scope, code, now: justInTime }), {
    ok: true,
    email: 'ada@acme.example',
  });
  t.like(await redeemCode(store, { ...scope, code, now: justInTime }), { ok: false, reason: 'no_code' });
});

test('a code past its ten minutes no longer matches, though the store still holds it', async (t) => {
  const store = openMemoryEphemeralStore();
  const code = await issueCode(store, { ...scope, email: 'ada@acme.example', now: issuedAt });
  const late = issuedAt + CODE_TTL_SECONDS * 1000;
  t.like(await redeemCode(store, { ...scope, code, now: late }), { ok: false, reason: 'no_code' });
});
