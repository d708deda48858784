/**
 * What finishRegistration records about discoverability, table-driven over
 * the pool's mode and what the browser's credProps said: the browser's
 * boolean when it gave one; otherwise true in a smart pool (its options
 * require a resident key, https://www.w3.org/TR/webauthn-3/#dom-residentkeyrequirement-required)
 * and unknown (null) in a classic pool, whose options only prefer one.
 */
import { randomBytes } from 'node:crypto';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import test from 'ava';
import { finishRegistration } from '../../../src/webauthn/finish-registration.ts';
import type { PasskeyPolicy } from '../../../src/webauthn/passkey-policy.ts';
import { SoftAuthenticator } from '../../support/soft-authenticator.ts';

const ORIGIN = 'http://localhost:8080';

const policy = (mode: PasskeyPolicy['mode']): PasskeyPolicy => ({
  poolId: 'unit',
  rpId: 'localhost',
  rpName: 'Unit',
  accountLabel: 'Unit',
  origins: [ORIGIN],
  mode,
  userVerification: 'required',
  algorithmIds: [-8, -7, -257],
  attestation: 'none',
  authenticatorAttachment: undefined,
  maxPerUser: 10,
  permittedAaguids: new Set(),
  prohibitedAaguids: new Set(),
  prohibitBackupEligibility: false,
  timeoutSeconds: 300,
});

/** credProps as the browser reports it: a value for `rk`, or no credProps at all. */
type Reported = { rk: unknown } | 'absent';

async function discoverableAfter(mode: PasskeyPolicy['mode'], reported: Reported) {
  const challenge = randomBytes(32).toString('base64url');
  const honest = new SoftAuthenticator().register(
    {
      challenge,
      rp: { id: 'localhost', name: 'Unit' },
      user: { id: randomBytes(32).toString('base64url'), name: 'ada@unit.example', displayName: 'Ada' },
      pubKeyCredParams: [{ alg: -7, type: 'public-key' }],
    },
    ORIGIN,
  );
  // clientExtensionResults is outside every signature: any client can say anything there.
  const response = {
    ...honest,
    clientExtensionResults: reported === 'absent' ? {} : { credProps: reported },
  } as RegistrationResponseJSON;
  const result = await finishRegistration({ policy: policy(mode), response, expectedChallenge: challenge });
  if (!result.ok) throw new Error(`registration refused: ${result.code} ${result.reason}`);
  return result.passkey.discoverable;
}

const cases: Array<[PasskeyPolicy['mode'], Reported, boolean | null]> = [
  ['smart', { rk: true }, true],
  ['smart', 'absent', true],
  ['smart', { rk: undefined }, true],
  ['smart', { rk: 'yes' }, true],
  ['classic', { rk: true }, true],
  ['classic', { rk: false }, false],
  ['classic', 'absent', null],
  ['classic', { rk: 'no' }, null],
];

const describe = (reported: Reported) =>
  reported === 'absent'
    ? 'no credProps'
    : reported.rk === undefined
      ? 'credProps without rk'
      : `rk ${JSON.stringify(reported.rk)}`;

for (const [mode, reported, expected] of cases) {
  test(`a ${mode} pool records discoverable ${expected} when the browser reports ${describe(reported)}`, async (t) => {
    t.is(await discoverableAfter(mode, reported), expected);
  });
}

test('a smart pool refuses a credential the browser reports as not discoverable (not_discoverable)', async (t) => {
  await t.throwsAsync(() => discoverableAfter('smart', { rk: false }), { message: /not_discoverable/ });
});
