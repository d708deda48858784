/**
 * A software WebAuthn authenticator plus client: it builds and signs its own
 * attestation and assertion objects (ES256, `none` or packed self
 * attestation), and lets a
 * test bend any part of a ceremony the way an attacker or a broken device
 * would: another origin or RP ID, missing flags, a replayed challenge, a
 * foreign user handle, a counter that goes backwards.
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

export interface StoredSoftCredential {
  id: Buffer;
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
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const publicKeyCose = isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(jwk.x ?? '', 'base64url')],
        [-3, Buffer.from(jwk.y ?? '', 'base64url')],
      ]),
    );
    const id = randomBytes(overrides.credentialIdBytes ?? 32);
    const credential: StoredSoftCredential = {
      id,
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
          ['alg', -7],
          ['sig', sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), privateKey)],
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
    const signature = sign(
      'sha256',
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
