/**
 * Every way a credential public key can be unsound, one row each: the key a
 * real authenticator makes passes, and each bent copy of it is refused with
 * its code (malformed, weak, or an algorithm the pool does not allow) and a
 * reason that names what is wrong. The integration tests
 * (test/integration/passkeys/ceremony-refusals.test.ts) send some of these
 * through a real registration.
 */
import { generateKeyPairSync } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import test from 'ava';
import type { CeremonyRefusalCode } from '../../../src/webauthn/ceremony-refusals.ts';
import { credentialPublicKeyProblem } from '../../../src/webauthn/credential-public-key.ts';

type Cose = Map<number | string, number | boolean | Uint8Array>;

const ES256 = -7;
const EDDSA = -8;
const RS256 = -257;
const ALL = [EDDSA, ES256, RS256];

const bytes = (value: string | undefined) => Buffer.from(value ?? '', 'base64url');
const hex = (value: string) => Buffer.from(value, 'hex');

function ec2Key(): Cose {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  return new Map<number, number | Uint8Array>([
    [1, 2],
    [3, ES256],
    [-1, 1],
    [-2, bytes(jwk.x)],
    [-3, bytes(jwk.y)],
  ]);
}

function okpKey(): Cose {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  return new Map<number, number | Uint8Array>([
    [1, 1],
    [3, EDDSA],
    [-1, 6],
    [-2, bytes(jwk.x)],
  ]);
}

function rsaKey(modulusLength = 2048, publicExponent = 65537): Cose {
  const jwk = generateKeyPairSync('rsa', { modulusLength, publicExponent }).publicKey.export({
    format: 'jwk',
  });
  return new Map<number, number | Uint8Array>([
    [1, 3],
    [3, RS256],
    [-1, bytes(jwk.n)],
    [-2, bytes(jwk.e)],
  ]);
}

const encode = (key: unknown) => isoCBOR.encode(key as Parameters<typeof isoCBOR.encode>[0]);
const problemOf = (key: unknown, allowed = ALL) => credentialPublicKeyProblem(encode(key), allowed);

/** A copy of `key` with `label` set to `value` (or removed, for undefined). */
function bent(key: Cose, label: number | string, value: number | boolean | Uint8Array | undefined): Cose {
  const copy = new Map(key);
  if (value === undefined) copy.delete(label);
  else copy.set(label, value);
  return copy;
}

/** The same coordinate with one bit flipped: almost surely off the curve. */
const flipped = (value: unknown) => {
  const copy = Buffer.from(value as Uint8Array);
  copy[31] = (copy[31] ?? 0) ^ 1;
  return copy;
};

test('accepts the keys real authenticators make: ES256, EdDSA and RS256 with e = 65537', (t) => {
  for (let round = 0; round < 20; round++) {
    t.is(problemOf(ec2Key()), undefined);
    t.is(problemOf(okpKey()), undefined);
  }
  t.is(problemOf(rsaKey()), undefined);
  t.is(problemOf(rsaKey(3072)), undefined);
});

const p256 = ec2Key();
const ed25519 = okpKey();
const rsa = rsaKey();
/** P-256's field prime: a coordinate that equals it is out of range. */
const P256_PRIME = hex('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff');

const refusals: Array<[string, unknown, CeremonyRefusalCode, RegExp, number[]?]> = [
  ['bytes that are not CBOR', 'not cbor', 'malformed_public_key', /not a COSE_Key map|not CBOR/],
  ['a CBOR array', [1, 2, 3], 'malformed_public_key', /not a COSE_Key map/],
  ['no alg', bent(p256, 3, undefined), 'malformed_public_key', /no numeric alg/],
  [
    'an alg the pool does not allow',
    p256,
    'algorithm_not_allowed',
    /alg -7 is not one the pool allows/,
    [EDDSA, RS256],
  ],
  [
    'an alg Postern does not know (ES384)',
    bent(p256, 3, -35),
    'algorithm_not_allowed',
    /alg -35 is not one the pool allows/,
  ],
  ['kty RSA with alg ES256', bent(p256, 1, 3), 'malformed_public_key', /kty 3 does not match alg ES256/],
  ['kty EC2 with alg RS256', bent(rsa, 1, 2), 'malformed_public_key', /kty 2 does not match alg RS256/],
  ['kty EC2 with alg EdDSA', bent(ed25519, 1, 2), 'malformed_public_key', /kty 2 does not match alg EdDSA/],
  [
    'kty as a string ("OKP")',
    new Map<unknown, unknown>([...ed25519, [1, 'OKP']]),
    'malformed_public_key',
    /kty OKP does not match/,
  ],
  ['an ES256 key on P-384', bent(p256, -1, 2), 'malformed_public_key', /curve 2, not P-256/],
  ['an ES256 key on Ed25519', bent(p256, -1, 6), 'malformed_public_key', /curve 6, not P-256/],
  [
    'an ES256 point off the curve',
    bent(p256, -3, flipped(p256.get(-3))),
    'malformed_public_key',
    /not a point on P-256/,
  ],
  [
    'an ES256 x equal to the field prime',
    bent(p256, -2, P256_PRIME),
    'malformed_public_key',
    /not a point on P-256/,
  ],
  [
    'an ES256 x of 31 bytes',
    bent(p256, -2, (p256.get(-2) as Uint8Array).subarray(1)),
    'malformed_public_key',
    /x is not 32 bytes/,
  ],
  [
    'an ES256 x with a leading zero (33 bytes)',
    bent(p256, -2, Buffer.concat([Buffer.alloc(1), p256.get(-2) as Uint8Array])),
    'malformed_public_key',
    /x is not 32 bytes/,
  ],
  [
    'a compressed ES256 point (y a boolean)',
    bent(p256, -3, true),
    'malformed_public_key',
    /y is not 32 bytes/,
  ],
  ['an ES256 key without y', bent(p256, -3, undefined), 'malformed_public_key', /lacks parameters -3/],
  [
    'an ES256 key carrying its private d',
    bent(p256, -4, new Uint8Array(32)),
    'malformed_public_key',
    /does not use: -4/,
  ],
  ['a key id (kid)', bent(p256, 2, new Uint8Array(8)), 'malformed_public_key', /does not use: 2/],
  ['a string label', new Map([...p256, ['x', 1]]), 'malformed_public_key', /does not use: x/],
  ['an EdDSA key on X25519', bent(ed25519, -1, 4), 'malformed_public_key', /curve 4, not Ed25519/],
  [
    'an EdDSA x of 31 bytes',
    bent(ed25519, -2, new Uint8Array(31).fill(1)),
    'malformed_public_key',
    /x is not 32 bytes/,
  ],
  [
    'an EdDSA key with a y',
    bent(ed25519, -3, new Uint8Array(32)),
    'malformed_public_key',
    /does not use: -3/,
  ],
  [
    'the Ed25519 identity (order 1)',
    bent(ed25519, -2, hex('0100000000000000000000000000000000000000000000000000000000000000')),
    'weak_public_key',
    /small order/,
  ],
  [
    'an Ed25519 point of order 8',
    bent(ed25519, -2, hex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05')),
    'weak_public_key',
    /small order/,
  ],
  [
    'an Ed25519 point of order 2 (y = -1)',
    bent(ed25519, -2, hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')),
    'weak_public_key',
    /small order/,
  ],
  [
    'a non-canonical Ed25519 encoding (y = p + 1)',
    bent(ed25519, -2, hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')),
    'malformed_public_key',
    /not a canonical encoding/,
  ],
  [
    'an Ed25519 y with no point (x² not a square)',
    bent(ed25519, -2, hex('0200000000000000000000000000000000000000000000000000000000000000')),
    'malformed_public_key',
    /not a canonical encoding/,
  ],
  ['a 1024-bit RSA modulus', rsaKey(1024), 'weak_public_key', /modulus of 1024 bits/],
  ['RSA with e = 3', rsaKey(2048, 3), 'weak_public_key', /exponent 3 is not odd/],
  ['RSA with e = 1', bent(rsa, -2, Buffer.from([1])), 'weak_public_key', /exponent 1 is not odd/],
  [
    'RSA with an even e',
    bent(rsa, -2, Buffer.from([1, 0, 0, 2])),
    'weak_public_key',
    /exponent 16777218 is not odd/,
  ],
  [
    'RSA with e ≥ 2^256',
    bent(rsa, -2, Buffer.alloc(33, 0xff)),
    'weak_public_key',
    /exponent \(large\) is not odd/,
  ],
  [
    'an RSA modulus with a leading zero octet',
    bent(rsa, -1, Buffer.concat([Buffer.alloc(1), rsa.get(-1) as Uint8Array])),
    'malformed_public_key',
    /leading zero/,
  ],
  [
    'an even RSA modulus',
    bent(rsa, -1, Buffer.concat([(rsa.get(-1) as Uint8Array).subarray(0, 255), Buffer.from([0xfe])])),
    'weak_public_key',
    /modulus is even/,
  ],
  ['an RSA modulus as a number', bent(rsa, -1, 65537), 'malformed_public_key', /n or e is not bytes/],
  ['an RSA key without e', bent(rsa, -2, undefined), 'malformed_public_key', /lacks parameters -2/],
];

for (const [label, key, code, reason, allowed] of refusals) {
  test(`refuses ${label}`, (t) => {
    const problem =
      typeof key === 'string'
        ? credentialPublicKeyProblem(Buffer.from(key), allowed ?? ALL)
        : problemOf(key, allowed ?? ALL);
    t.is(problem?.code, code);
    // The reason is this module's own sentence: it names which of the code's checks failed.
    t.regex(problem?.reason ?? 'accepted', reason);
  });
}
