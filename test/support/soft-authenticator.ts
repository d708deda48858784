/**
 * A software WebAuthn authenticator plus client: it builds and signs its own
 * attestation and assertion objects (ES256, EdDSA or RS256 keys, `none` or
 * packed self attestation), and lets a test bend any part of a ceremony the
 * way an attacker or a broken device would: another origin or RP ID, missing
 * flags, a replayed challenge, a foreign user handle, a counter that goes
 * backwards, a credential public key that is weak or malformed.
 *
 * https://www.w3.org/TR/webauthn-3/#sctn-authenticator-data
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const FLAG = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const;

/** COSE algorithm identifiers the authenticator can make keys for. */
export const SOFT_ALGORITHMS = { ES256: -7, EdDSA: -8, RS256: -257 } as const;
export type SoftAlgorithm = keyof typeof SOFT_ALGORITHMS;

/** A COSE_Key as a map from labels to values, for a test to bend. */
export type CoseKey = Map<number | string, number | boolean | Uint8Array>;

export interface StoredSoftCredential {
  id: Buffer;
  algorithm: SoftAlgorithm;
  privateKey: KeyObject;
  publicKeyCose: Uint8Array;
  rpId: string;
  userHandle: Buffer;
  signCount: number;
}

export interface SoftAuthenticatorOptions {
  /** (Optional) The authenticator model. Defaults to all zeroes (unknown). */
  aaguid?: string;
  /** (Optional) A synced passkey (BE and BS set). Defaults to device-bound. */
  synced?: boolean;
  /** (Optional) Whether sign counts increase. Defaults to true (a device-bound key); synced keys report 0. */
  counts?: boolean;
}

/** Per-ceremony tampering; every field defaults to the honest value. */
export interface CeremonyOverrides {
  origin?: string;
  /** The RP ID whose hash goes into authenticator data. */
  rpId?: string;
  challenge?: string;
  type?: string;
  userPresent?: boolean;
  userVerified?: boolean;
  backupEligible?: boolean;
  backupState?: boolean;
  crossOrigin?: boolean;
  topOrigin?: string;
}

export interface AssertionOverrides extends CeremonyOverrides {
  /** Which credential to use. Defaults to the first allowed one, else the first stored for the RP. */
  credentialId?: string;
  /** The user handle to return: a value, `null` for none. Defaults to the credential's. */
  userHandle?: string | null;
  /** The sign count to report. Defaults to the next one. */
  signCount?: number;
}

export interface RegistrationOverrides extends CeremonyOverrides {
  /** credProps.rk to report; null reports no credProps at all. Defaults to true (a discoverable credential). */
  residentKey?: boolean | null;
  /** Transports to report. */
  transports?: string[];
  /** Length of the new credential id in bytes. Defaults to 32. */
  credentialIdBytes?: number;
  /** An `id`/`rawId` to report other than the one in the authenticator data. */
  responseId?: string;
  /** `packed-self`: a packed statement signed by the credential's own key (no certificate). Defaults to `none`. */
  attestation?: 'none' | 'packed-self';
  /** (Optional) The new key's algorithm. Defaults to ES256. */
  algorithm?: SoftAlgorithm;
  /** (Optional) An RS256 key's modulus length in bits. Defaults to 2048. */
  rsaModulusBits?: number;
  /** (Optional) An RS256 key's public exponent. Defaults to 65537. */
  rsaExponent?: number;
  /** (Optional) Rewrites the COSE key reported in the authenticator data (the private key stays). */
  coseKey?: (key: CoseKey) => CoseKey;
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();
const b64u = (data: Uint8Array) => Buffer.from(data).toString('base64url');

export class SoftAuthenticator {
  readonly credentials: StoredSoftCredential[] = [];
  readonly #aaguid: Buffer;
  readonly #synced: boolean;
  readonly #counts: boolean;

  constructor({
    aaguid = '00000000-0000-0000-0000-000000000000',
    synced = false,
    counts,
  }: SoftAuthenticatorOptions = {}) {
    this.#aaguid = Buffer.from(aaguid.replaceAll('-', ''), 'hex');
    this.#synced = synced;
    this.#counts = counts ?? !synced;
  }

  /** navigator.credentials.create(), as seen by the server: a RegistrationResponseJSON. */
  register(
    options: PublicKeyCredentialCreationOptionsJSON,
    origin: string,
    overrides: RegistrationOverrides = {},
  ): RegistrationResponseJSON {
    const rpId = options.rp.id ?? new URL(origin).hostname;
    const algorithm = overrides.algorithm ?? 'ES256';
    const { privateKey, coseKey } = makeKey(algorithm, overrides);
    const publicKeyCose = isoCBOR.encode(
      (overrides.coseKey ? overrides.coseKey(coseKey) : coseKey) as Parameters<typeof isoCBOR.encode>[0],
    );
    const id = randomBytes(overrides.credentialIdBytes ?? 32);
    const credential: StoredSoftCredential = {
      id,
      algorithm,
      privateKey,
      publicKeyCose,
      rpId,
      userHandle: Buffer.from(options.user.id, 'base64url'),
      signCount: 0,
    };

    const attestedCredentialData = Buffer.concat([
      this.#aaguid,
      Buffer.from([id.length >> 8, id.length & 0xff]),
      id,
      Buffer.from(publicKeyCose),
    ]);
    const authData = Buffer.concat([
      this.#authData(overrides.rpId ?? rpId, overrides, 0, FLAG.AT),
      attestedCredentialData,
    ]);
    const clientDataJSON = this.#clientData('webauthn.create', options.challenge, origin, overrides);
    const selfAttested = overrides.attestation === 'packed-self';
    const attStmt = selfAttested
      ? new Map<string, unknown>([
          ['alg', SOFT_ALGORITHMS[algorithm]],
          ['sig', signWith(algorithm, Buffer.concat([authData, sha256(clientDataJSON)]), privateKey)],
        ])
      : new Map();
    const attestationObject = isoCBOR.encode(
      new Map<string, unknown>([
        ['fmt', selfAttested ? 'packed' : 'none'],
        ['attStmt', attStmt],
        ['authData', authData],
      ]) as Parameters<typeof isoCBOR.encode>[0],
    );
    this.credentials.push(credential);
    const responseId = overrides.responseId ?? b64u(id);
    const residentKey = overrides.residentKey === undefined ? true : overrides.residentKey;
    return {
      id: responseId,
      rawId: responseId,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: residentKey === null ? {} : { credProps: { rk: residentKey } },
      response: {
        clientDataJSON: b64u(clientDataJSON),
        attestationObject: b64u(attestationObject),
        transports: (overrides.transports ?? [
          'internal',
          'hybrid',
        ]) as RegistrationResponseJSON['response']['transports'],
      },
    };
  }

  /** navigator.credentials.get(), as seen by the server: an AuthenticationResponseJSON. */
  authenticate(
    options: PublicKeyCredentialRequestOptionsJSON,
    origin: string,
    overrides: AssertionOverrides = {},
  ): AuthenticationResponseJSON {
    const rpId = options.rpId ?? new URL(origin).hostname;
    const allowed = new Set((options.allowCredentials ?? []).map((credential) => credential.id));
    const credential =
      this.credentials.find((candidate) => b64u(candidate.id) === overrides.credentialId) ??
      this.credentials.find((candidate) => allowed.has(b64u(candidate.id))) ??
      this.credentials.find((candidate) => candidate.rpId === rpId && allowed.size === 0);
    if (!credential) throw new Error('the soft authenticator has no credential for these options');

    if (this.#counts) credential.signCount += 1;
    const signCount = overrides.signCount ?? (this.#counts ? credential.signCount : 0);
    const authData = this.#authData(overrides.rpId ?? rpId, overrides, signCount, 0);
    const clientDataJSON = this.#clientData('webauthn.get', options.challenge, origin, overrides);
    const signature = signWith(
      credential.algorithm,
      Buffer.concat([authData, sha256(clientDataJSON)]),
      credential.privateKey,
    );
    const userHandle =
      overrides.userHandle === undefined ? b64u(credential.userHandle) : overrides.userHandle;
    return {
      id: b64u(credential.id),
      rawId: b64u(credential.id),
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        ...(userHandle === null ? {} : { userHandle }),
      },
    };
  }

  #authData(rpId: string, overrides: CeremonyOverrides, signCount: number, extraFlags: number): Buffer {
    let flags = extraFlags;
    if (overrides.userPresent ?? true) flags |= FLAG.UP;
    if (overrides.userVerified ?? true) flags |= FLAG.UV;
    if (overrides.backupEligible ?? this.#synced) flags |= FLAG.BE;
    if (overrides.backupState ?? this.#synced) flags |= FLAG.BS;
    const count = Buffer.alloc(4);
    count.writeUInt32BE(signCount);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), count]);
  }

  #clientData(type: string, challenge: string, origin: string, overrides: CeremonyOverrides): Buffer {
    return Buffer.from(
      JSON.stringify({
        type: overrides.type ?? type,
        challenge: overrides.challenge ?? challenge,
        origin: overrides.origin ?? origin,
        crossOrigin: overrides.crossOrigin ?? false,
        ...(overrides.topOrigin ? { topOrigin: overrides.topOrigin } : {}),
      }),
    );
  }
}

/** A new key pair and its honest COSE_Key (RFC 9053 §7, RFC 8230 §4). */
function makeKey(
  algorithm: SoftAlgorithm,
  { rsaModulusBits = 2048, rsaExponent = 65537 }: RegistrationOverrides,
): { privateKey: KeyObject; coseKey: CoseKey } {
  const bytes = (value: string | undefined) => Buffer.from(value ?? '', 'base64url');
  if (algorithm === 'EdDSA') {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' });
    return {
      privateKey,
      coseKey: new Map<number, number | Uint8Array>([
        [1, 1], // kty: OKP
        [3, -8], // alg: EdDSA
        [-1, 6], // crv: Ed25519
        [-2, bytes(jwk.x)],
      ]),
    };
  }
  if (algorithm === 'RS256') {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: rsaModulusBits,
      publicExponent: rsaExponent,
    });
    const jwk = publicKey.export({ format: 'jwk' });
    return {
      privateKey,
      coseKey: new Map<number, number | Uint8Array>([
        [1, 3], // kty: RSA
        [3, -257], // alg: RS256
        [-1, bytes(jwk.n)],
        [-2, bytes(jwk.e)],
      ]),
    };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    privateKey,
    coseKey: new Map<number, number | Uint8Array>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, bytes(jwk.x)],
      [-3, bytes(jwk.y)],
    ]),
  };
}

/** A WebAuthn signature: DER-encoded ECDSA, plain Ed25519, RSASSA-PKCS1-v1_5. */
function signWith(algorithm: SoftAlgorithm, data: Buffer, privateKey: KeyObject): Buffer {
  return sign(algorithm === 'EdDSA' ? null : 'sha256', data, privateKey);
}
