/**
 * The code of every refused verification, through finishAuthentication and
 * finishRegistration with the real SimpleWebAuthn under them: each case
 * bends one part of an honest response (software authenticator) and expects
 * the code of the rule it breaks. Where the library refuses (origin, RP ID,
 * type, challenge, flags, signature, algorithm, attestation statement), the
 * code comes from src/webauthn/diagnose-library-refusal.ts and the reason is
 * the library's message, so these cases also catch a library upgrade that
 * reorders or changes its checks. The catalogue's codes are stable snake_case.
 */
import { randomBytes } from 'node:crypto';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import test from 'ava';
import { REFUSAL_CODES } from '../../../src/factors/refusal-codes.ts';
import { CEREMONY_REFUSALS, type CeremonyRefusalCode } from '../../../src/webauthn/ceremony-refusals.ts';
import { finishAuthentication, type StoredCredential } from '../../../src/webauthn/finish-authentication.ts';
import { finishRegistration } from '../../../src/webauthn/finish-registration.ts';
import type { PasskeyPolicy } from '../../../src/webauthn/passkey-policy.ts';
import {
  type AssertionOverrides,
  type RegistrationOverrides,
  SoftAuthenticator,
} from '../../support/soft-authenticator.ts';

const ORIGIN = 'http://localhost:8080';
const PROHIBITED = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';

const policy = (changes: Partial<PasskeyPolicy> = {}): PasskeyPolicy => ({
  poolId: 'unit',
  rpId: 'localhost',
  rpName: 'Unit',
  accountLabel: 'Unit',
  origins: [ORIGIN],
  mode: 'smart',
  userVerification: 'required',
  algorithmIds: [-8, -7, -257],
  attestation: 'none',
  authenticatorAttachment: undefined,
  maxPerUser: 10,
  permittedAaguids: new Set(),
  prohibitedAaguids: new Set(),
  prohibitBackupEligibility: false,
  timeoutSeconds: 300,
  ...changes,
});

const challenge = () => randomBytes(32).toString('base64url');
const userHandle = randomBytes(32).toString('base64url');

const creationOptions = (value: string) => ({
  challenge: value,
  rp: { id: 'localhost', name: 'Unit' },
  user: { id: userHandle, name: 'ada@unit.example', displayName: 'Ada' },
  pubKeyCredParams: [{ alg: -7, type: 'public-key' as const }],
});

/** Rewrites the attestation object's CBOR. */
function withAttestation(
  response: RegistrationResponseJSON,
  rewrite: (attestation: Map<string, unknown>) => void,
): RegistrationResponseJSON {
  const attestation = isoCBOR.decodeFirst<Map<string, unknown>>(
    Buffer.from(response.response.attestationObject, 'base64url'),
  );
  rewrite(attestation);
  const encoded = isoCBOR.encode(attestation as Parameters<typeof isoCBOR.encode>[0]);
  return {
    ...response,
    response: { ...response.response, attestationObject: Buffer.from(encoded).toString('base64url') },
  };
}

/** Registers with `overrides` (and then `bend`) against `poolPolicy`. */
async function register(
  overrides: RegistrationOverrides = {},
  {
    poolPolicy = policy(),
    bend = (response: RegistrationResponseJSON) => response,
    conditional = false,
    authenticator = new SoftAuthenticator(),
  } = {},
) {
  const expectedChallenge = challenge();
  const response = bend(authenticator.register(creationOptions(expectedChallenge), ORIGIN, overrides));
  return finishRegistration({ policy: poolPolicy, response, expectedChallenge, conditional });
}

/** A registered passkey, its authenticator, and a maker of assertions for fresh challenges. */
async function registered(options: { synced?: boolean; aaguid?: string } = {}) {
  const authenticator = new SoftAuthenticator(options);
  const result = await register({}, { authenticator });
  if (!result.ok) throw new Error(`honest registration refused: ${result.code} ${result.reason}`);
  const { passkey } = result;
  const credential: StoredCredential = { ...passkey, counter: passkey.counter };
  return { authenticator, credential };
}

async function signIn(
  overrides: AssertionOverrides = {},
  {
    poolPolicy = policy(),
    bend = (response: AuthenticationResponseJSON) => response,
    requireUserHandle = true,
    passkey,
    stored = {},
  }: {
    poolPolicy?: PasskeyPolicy;
    bend?: (response: AuthenticationResponseJSON) => AuthenticationResponseJSON;
    requireUserHandle?: boolean;
    passkey?: Awaited<ReturnType<typeof registered>>;
    stored?: Partial<StoredCredential>;
  } = {},
) {
  const { authenticator, credential } = passkey ?? (await registered());
  const expectedChallenge = challenge();
  const response = bend(
    authenticator.authenticate({ challenge: expectedChallenge, rpId: 'localhost' }, ORIGIN, overrides),
  );
  return finishAuthentication({
    policy: poolPolicy,
    response,
    expectedChallenge,
    credential: { ...credential, ...stored },
    ownerUserHandle: userHandle,
    requireUserHandle,
  });
}

const codeOf = (result: { ok: true } | { ok: false; code: CeremonyRefusalCode }) =>
  result.ok ? 'accepted' : result.code;

test('refusal codes are unique snake_case names, each with the rule it names', (t) => {
  for (const [code, rule] of Object.entries(REFUSAL_CODES)) {
    t.regex(code, /^[a-z]+(?:_[a-z]+)*$/, code);
    t.regex(rule, /^[A-Z`].*\.$/, code);
  }
  for (const code of Object.keys(CEREMONY_REFUSALS)) t.true(code in REFUSAL_CODES, code);
});

test('an honest assertion and an honest registration pass', async (t) => {
  t.is(codeOf(await signIn()), 'accepted');
  t.is(codeOf(await register()), 'accepted');
  t.is(
    codeOf(await register({ userPresent: false, userVerified: false }, { conditional: true })),
    'accepted',
  );
});

const assertionCases: Array<[string, AssertionOverrides, CeremonyRefusalCode]> = [
  ['a foreign origin', { origin: 'https://evil.example' }, 'origin_mismatch'],
  ['a look-alike origin', { origin: `${ORIGIN}/` }, 'origin_mismatch'],
  ['another RP ID', { rpId: 'evil.example' }, 'rp_id_mismatch'],
  ['registration client data', { type: 'webauthn.create' }, 'client_data_type_mismatch'],
  ['another challenge', { challenge: challenge() }, 'challenge_mismatch'],
  ['no user presence', { userPresent: false }, 'user_presence_missing'],
  ['no user verification', { userVerified: false }, 'user_verification_missing'],
  ['a foreign top origin', { crossOrigin: true, topOrigin: 'https://evil.example' }, 'cross_origin'],
  ['a top origin without crossOrigin', { topOrigin: 'https://evil.example' }, 'cross_origin'],
  ['a cross-origin frame', { crossOrigin: true }, 'cross_origin'],
  ['another user handle', { userHandle: randomBytes(32).toString('base64url') }, 'user_handle_mismatch'],
  ['no user handle, usernameless', { userHandle: null }, 'user_handle_missing'],
  ['backup eligibility that appeared', { backupEligible: true }, 'backup_eligibility_changed'],
];

for (const [label, overrides, code] of assertionCases) {
  test(`an assertion with ${label} is refused as ${code}`, async (t) => {
    const result = await signIn(overrides);
    t.is(codeOf(result), code);
    t.false(result.ok === false && result.reason === code, 'the reason is a sentence, not the code');
  });
}

test('an assertion whose signature is over other data is refused as signature_invalid', async (t) => {
  const passkey = await registered();
  const other = passkey.authenticator.authenticate({ challenge: challenge(), rpId: 'localhost' }, ORIGIN);
  const result = await signIn(
    {},
    {
      passkey,
      bend: (response) => ({
        ...response,
        response: { ...response.response, signature: other.response.signature },
      }),
    },
  );
  t.is(codeOf(result), 'signature_invalid');
  const garbage = await signIn(
    {},
    { passkey, bend: (response) => ({ ...response, response: { ...response.response, signature: 'AAAA' } }) },
  );
  t.is(codeOf(garbage), 'signature_invalid');
});

test('an assertion that cannot be read is refused as malformed_response', async (t) => {
  const passkey = await registered();
  const bends: Array<(response: AuthenticationResponseJSON) => AuthenticationResponseJSON> = [
    (response) => ({ ...response, rawId: randomBytes(32).toString('base64url') }),
    (response) => ({ ...response, response: { ...response.response, clientDataJSON: 'bm90IGpzb24' } }),
    (response) => ({ ...response, response: { ...response.response, authenticatorData: 'AAAA' } }),
  ];
  for (const bend of bends) t.is(codeOf(await signIn({}, { passkey, bend })), 'malformed_response');
});

test('an assertion is judged by the pool and the stored passkey after it verifies', async (t) => {
  const synced = await registered({ synced: true });
  t.is(
    codeOf(await signIn({}, { passkey: synced, poolPolicy: policy({ prohibitBackupEligibility: true }) })),
    'backup_eligible_prohibited',
  );
  t.is(
    codeOf(
      await signIn(
        {},
        { poolPolicy: policy({ prohibitedAaguids: new Set(['00000000-0000-0000-0000-000000000000']) }) },
      ),
    ),
    'aaguid_prohibited',
  );
  t.is(codeOf(await signIn({ signCount: 3 }, { stored: { counter: 5 } })), 'counter_regression');
});

const registrationCases: Array<[string, RegistrationOverrides, CeremonyRefusalCode]> = [
  ['a foreign origin', { origin: 'https://evil.example' }, 'origin_mismatch'],
  ['another RP ID', { rpId: 'evil.example' }, 'rp_id_mismatch'],
  ['assertion client data', { type: 'webauthn.get' }, 'client_data_type_mismatch'],
  ['another challenge', { challenge: challenge() }, 'challenge_mismatch'],
  ['no user presence', { userPresent: false }, 'user_presence_missing'],
  ['no user verification', { userVerified: false }, 'user_verification_missing'],
  ['a cross-origin frame', { crossOrigin: true }, 'cross_origin'],
  [
    'an id other than the authenticator data’s',
    { responseId: randomBytes(32).toString('base64url') },
    'credential_id_mismatch',
  ],
  ['a credential id over 1023 bytes', { credentialIdBytes: 1024 }, 'credential_id_too_long'],
  ['a non-discoverable credential', { residentKey: false }, 'not_discoverable'],
  [
    'a key without its alg',
    {
      coseKey: (key) => {
        key.delete(3);
        return key;
      },
    },
    'malformed_public_key',
  ],
  ['an ES256 key on another curve', { coseKey: (key) => key.set(-1, 2) }, 'malformed_public_key'],
  ['a 1024-bit RSA key', { algorithm: 'RS256', rsaModulusBits: 1024 }, 'weak_public_key'],
];

for (const [label, overrides, code] of registrationCases) {
  test(`a registration with ${label} is refused as ${code}`, async (t) => {
    t.is(codeOf(await register(overrides)), code);
  });
}

test('a registration with an algorithm the pool does not offer is refused as algorithm_not_allowed', async (t) => {
  // The library refuses it (the options did not offer it), before Postern's key check.
  const result = await register({ algorithm: 'RS256' }, { poolPolicy: policy({ algorithmIds: [-7] }) });
  t.is(codeOf(result), 'algorithm_not_allowed');
});

test('a registration whose attestation statement does not verify is refused as attestation_invalid', async (t) => {
  const forged = await register(
    { attestation: 'packed-self' },
    {
      bend: (response) =>
        withAttestation(response, (attestation) => {
          const statement = attestation.get('attStmt') as Map<string, unknown>;
          const signature = Buffer.from(statement.get('sig') as Uint8Array);
          signature[signature.length - 1] = (signature.at(-1) ?? 0) ^ 1;
          statement.set('sig', signature);
        }),
    },
  );
  t.is(codeOf(forged), 'attestation_invalid');
  const noneWithStatement = await register(
    {},
    {
      bend: (response) =>
        withAttestation(response, (attestation) =>
          attestation.set('attStmt', new Map([['sig', new Uint8Array(8)]])),
        ),
    },
  );
  t.is(codeOf(noneWithStatement), 'attestation_invalid');
  const unknownFormat = await register(
    {},
    { bend: (response) => withAttestation(response, (attestation) => attestation.set('fmt', 'mystery')) },
  );
  t.is(codeOf(unknownFormat), 'attestation_invalid');
});

test('a registration is judged by the pool after it verifies', async (t) => {
  const direct = policy({ attestation: 'direct' });
  t.is(codeOf(await register({}, { poolPolicy: direct })), 'attestation_required');
  t.is(
    codeOf(await register({ attestation: 'packed-self' }, { poolPolicy: direct })),
    'attestation_required',
  );
  t.is(
    codeOf(
      await register(
        {},
        {
          poolPolicy: policy({ prohibitedAaguids: new Set([PROHIBITED]) }),
          authenticator: new SoftAuthenticator({ aaguid: PROHIBITED }),
        },
      ),
    ),
    'aaguid_prohibited',
  );
  t.is(
    codeOf(
      await register(
        {},
        {
          poolPolicy: policy({ prohibitBackupEligibility: true }),
          authenticator: new SoftAuthenticator({ synced: true }),
        },
      ),
    ),
    'backup_eligible_prohibited',
  );
});

test('a registration that cannot be read is refused as malformed_response', async (t) => {
  const bends: Array<(response: RegistrationResponseJSON) => RegistrationResponseJSON> = [
    (response) => ({ ...response, rawId: randomBytes(32).toString('base64url') }),
    (response) => ({ ...response, response: { ...response.response, clientDataJSON: 'bm90IGpzb24' } }),
    (response) => ({ ...response, response: { ...response.response, attestationObject: 'AAAA' } }),
    (response) => withAttestation(response, (attestation) => attestation.set('authData', new Uint8Array(10))),
  ];
  for (const bend of bends) t.is(codeOf(await register({}, { bend })), 'malformed_response');
});
