/**
 * The credential public key of a new passkey, checked in full before it is
 * stored. SimpleWebAuthn decodes the COSE key and checks that its `alg` is one
 * the options offered, and nothing more: with `none` attestation nothing at
 * registration ever uses the key, so a malformed key would be stored and fail
 * every sign-in, and a weak one (RSA with e = 1, an Ed25519 point of small
 * order) would accept signatures anyone can make. A key is refused unless:
 *
 * - it is a COSE_Key map holding exactly the parameters its key type and
 *   algorithm require and no others: "MUST NOT contain any other OPTIONAL
 *   parameters" (https://www.w3.org/TR/webauthn-3/#sctn-attested-credential-data),
 *   so a private `d` or a `kid` is refused too;
 * - its `alg` is one the pool allows, and its `kty` (and curve) the one that
 *   algorithm uses (RFC 9053 §2.1, §2.2; RFC 8812 §2);
 * - ES256: EC2 on P-256, `x` and `y` 32 bytes each ("leading zero octets MUST
 *   be preserved", RFC 9053 §7.1.1; no point compression), and the point on
 *   the curve (node's key import checks it, and that both are below p);
 * - EdDSA: OKP on Ed25519, `x` 32 bytes, a canonical encoding of a point on
 *   the curve (RFC 8032 §5.1.3) that is not of small order (a small-order key
 *   verifies forged signatures, which is why libsodium refuses one too);
 * - RS256: RSA with a modulus of 2048 bits or more ("A key size of 2048 bits
 *   or larger MUST be used", RFC 8230 §6.1) and at most 16384 (OpenSSL's
 *   limit), odd; the exponent odd with 2^16 < e < 2^256, the bounds of FIPS
 *   186-5 Appendix A.1.1 (they admit 65537, which every RS256 authenticator
 *   uses, and refuse e = 1 and e = 3); both in the minimum number of octets
 *   (RFC 8230 §4).
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import { type Refused, refused } from './ceremony-refusals.ts';

/** COSE labels (https://www.iana.org/assignments/cose/cose.xhtml). */
const KTY = 1;
const ALG = 3;
const KTY_OKP = 1;
const KTY_EC2 = 2;
const KTY_RSA = 3;
const ES256 = -7;
const EDDSA = -8;
const RS256 = -257;
const CRV_P256 = 1;
const CRV_ED25519 = 6;

/** What each algorithm's key must hold: key type, and its other parameters (labels). */
const SHAPES: Record<number, { name: string; kty: number; params: readonly number[] }> = {
  [ES256]: { name: 'ES256', kty: KTY_EC2, params: [-1, -2, -3] }, // crv, x, y
  [EDDSA]: { name: 'EdDSA', kty: KTY_OKP, params: [-1, -2] }, // crv, x
  [RS256]: { name: 'RS256', kty: KTY_RSA, params: [-1, -2] }, // n, e
};

const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 16_384;

const malformed = (reason: string) => refused('malformed_public_key', reason);
const weak = (reason: string) => refused('weak_public_key', reason);

/**
 * Why the key is refused, or undefined when it is sound: `malformed_public_key`
 * (not the COSE key its algorithm defines), `algorithm_not_allowed`, or
 * `weak_public_key` (well formed, but its RSA bounds or Ed25519 order fail).
 */
export function credentialPublicKeyProblem(
  publicKey: Uint8Array,
  allowedAlgorithms: readonly number[],
): Refused | undefined {
  let key: unknown;
  try {
    key = isoCBOR.decodeFirst<unknown>(new Uint8Array(publicKey));
  } catch {
    return malformed('credential public key is not CBOR');
  }
  if (!(key instanceof Map)) return malformed('credential public key is not a COSE_Key map');
  const alg = key.get(ALG);
  const kty = key.get(KTY);
  if (typeof alg !== 'number') return malformed('credential public key has no numeric alg');
  const shape = SHAPES[alg];
  if (!shape || !allowedAlgorithms.includes(alg))
    return refused('algorithm_not_allowed', `credential public key alg ${alg} is not one the pool allows`);
  if (kty !== shape.kty)
    return malformed(`credential public key kty ${String(kty)} does not match alg ${shape.name}`);
  const labels = new Set([KTY, ALG, ...shape.params]);
  const extra = [...key.keys()].filter((label) => !labels.has(label));
  if (extra.length > 0)
    return malformed(`credential public key has parameters ${shape.name} does not use: ${extra}`);
  const missing = shape.params.filter((label) => !key.has(label));
  if (missing.length > 0)
    return malformed(`credential public key lacks parameters ${missing} of ${shape.name}`);

  if (alg === ES256) return ec2Problem(key.get(-1), key.get(-2), key.get(-3));
  if (alg === EDDSA) return ed25519Problem(key.get(-1), key.get(-2));
  return rsaProblem(key.get(-1), key.get(-2));
}

const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;

function ec2Problem(crv: unknown, x: unknown, y: unknown): Refused | undefined {
  if (crv !== CRV_P256) return malformed(`ES256 key on curve ${String(crv)}, not P-256`);
  if (!isBytes(x) || x.length !== 32) return malformed('ES256 key x is not 32 bytes');
  if (!isBytes(y) || y.length !== 32) return malformed('ES256 key y is not 32 bytes (or is compressed)');
  const jwk: JsonWebKey = {
    kty: 'EC',
    crv: 'P-256',
    x: Buffer.from(x).toString('base64url'),
    y: Buffer.from(y).toString('base64url'),
  };
  try {
    createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return malformed('ES256 key is not a point on P-256');
  }
  return undefined;
}

function rsaProblem(n: unknown, e: unknown): Refused | undefined {
  if (!isBytes(n) || !isBytes(e) || n.length === 0 || e.length === 0)
    return malformed('RS256 key n or e is not bytes');
  if (n[0] === 0 || e[0] === 0) return malformed('RS256 key n or e has leading zero octets');
  const modulus = toBigInt(n, 'big');
  const exponent = toBigInt(e, 'big');
  const bits = modulus.toString(2).length;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS)
    return weak(`RS256 key modulus of ${bits} bits, outside ${MIN_RSA_BITS}-${MAX_RSA_BITS}`);
  if (modulus % 2n === 0n) return weak('RS256 key modulus is even');
  if (exponent % 2n === 0n || exponent <= 1n << 16n || exponent >= 1n << 256n)
    return weak(
      `RS256 key exponent ${exponent < 1n << 32n ? exponent : '(large)'} is not odd with 2^16 < e < 2^256`,
    );
  if (exponent >= modulus) return weak('RS256 key exponent is not below the modulus');
  return undefined;
}

// ------------------------------------------------------------- Ed25519
// Edwards25519: -x^2 + y^2 = 1 + d x^2 y^2 over GF(p), RFC 8032 §5.1.

const P = 2n ** 255n - 19n;
const mod = (value: bigint) => ((value % P) + P) % P;

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let square = mod(base);
  for (let rest = exponent; rest > 0n; rest >>= 1n) {
    if (rest & 1n) result = (result * square) % P;
    square = (square * square) % P;
  }
  return result;
}

const inverse = (value: bigint) => power(value, P - 2n);
const D = mod(-121665n * inverse(121666n));
/** 2^((p-1)/4): a square root of -1. */
const SQRT_M1 = power(2n, (P - 1n) / 4n);

function ed25519Problem(crv: unknown, x: unknown): Refused | undefined {
  if (crv !== CRV_ED25519) return malformed(`EdDSA key on curve ${String(crv)}, not Ed25519`);
  if (!isBytes(x) || x.length !== 32) return malformed('EdDSA key x is not 32 bytes');
  const point = decodeEd25519Point(x);
  if (!point) return malformed('EdDSA key is not a canonical encoding of a point on Ed25519');
  // The cofactor is 8: [8]P is the identity exactly when P has small order.
  let multiple = point;
  for (let doubling = 0; doubling < 3; doubling++) multiple = addPoints(multiple, multiple);
  if (multiple.x === 0n && multiple.y === 1n) return weak('EdDSA key is a point of small order');
  return undefined;
}

interface Point {
  x: bigint;
  y: bigint;
}

/** RFC 8032 §5.1.3, decoding; undefined where it says "decoding fails". */
function decodeEd25519Point(bytes: Uint8Array): Point | undefined {
  const encoded = toBigInt(bytes, 'little');
  const sign = encoded >> 255n;
  const y = encoded & ((1n << 255n) - 1n);
  if (y >= P) return undefined;
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * power(v, 3n) * power(u * power(v, 7n), (P - 5n) / 8n));
  const check = mod(v * x * x);
  if (check === mod(-u)) x = mod(x * SQRT_M1);
  else if (check !== u) return undefined;
  if (x === 0n && sign === 1n) return undefined;
  if ((x & 1n) !== sign) x = mod(-x);
  return { x, y };
}

/** Point addition on the twisted Edwards curve (a = -1); complete, since d is not a square. */
function addPoints(a: Point, b: Point): Point {
  const product = mod(D * a.x * b.x * a.y * b.y);
  return {
    x: mod((a.x * b.y + a.y * b.x) * inverse(1n + product)),
    y: mod((a.y * b.y + a.x * b.x) * inverse(1n - product)),
  };
}

function toBigInt(bytes: Uint8Array, order: 'big' | 'little'): bigint {
  const hex = Buffer.from(order === 'big' ? bytes : [...bytes].reverse()).toString('hex');
  return hex ? BigInt(`0x${hex}`) : 0n;
}
