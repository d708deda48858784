/**
 * Which rule SimpleWebAuthn refused a response by, as a refusal code
 * (./ceremony-refusals.ts). The library throws plain `Error`s that differ
 * only in their message, and a message is no interface: rather than parse
 * it, this looks at the response again and names the first of the library's
 * checks it fails, in the library's order (`verifyAuthenticationResponse`,
 * `verifyRegistrationResponse`, @simplewebauthn/server 14). It runs only
 * after the library said no: the library stays the judge of whether a
 * response passes, this only names why not, and the library's message stays
 * the reason, for the log.
 *
 * What none of these checks explains is what the library does after them:
 * verifying the signature (`signature_invalid`), or the attestation statement
 * (`attestation_invalid`).
 *
 * https://www.w3.org/TR/webauthn-3/#sctn-verifying-assertion
 * https://www.w3.org/TR/webauthn-3/#sctn-registering-a-new-credential
 */
import { createHash } from 'node:crypto';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import {
  decodeAttestationObject,
  decodeClientDataJSON,
  isoCBOR,
  parseAuthenticatorData,
} from '@simplewebauthn/server/helpers';
import type { CeremonyRefusalCode } from './ceremony-refusals.ts';

/** What the verification was told to expect. */
export interface ExpectedResponse {
  challenge: string;
  origins: readonly string[];
  rpId: string;
  requireUserPresence: boolean;
  requireUserVerification: boolean;
}

type Diagnosis = CeremonyRefusalCode | undefined;
type AuthenticatorData = ReturnType<typeof parseAuthenticatorData>;

/** The code of a refused assertion. */
export function diagnoseAssertionRefusal(
  response: AuthenticationResponseJSON,
  expected: ExpectedResponse,
): CeremonyRefusalCode {
  const early =
    idProblem(response) ?? clientDataProblem(response.response.clientDataJSON, 'webauthn.get', expected);
  if (early) return early;
  const authData = parsed(() => Buffer.from(response.response.authenticatorData, 'base64url'));
  if (!authData) return 'malformed_response';
  return authenticatorDataProblem(authData, expected) ?? 'signature_invalid';
}

/** The code of a refused registration. */
export function diagnoseRegistrationRefusal(
  response: RegistrationResponseJSON,
  expected: ExpectedResponse & { algorithmIds: readonly number[] },
): CeremonyRefusalCode {
  const early =
    idProblem(response) ?? clientDataProblem(response.response.clientDataJSON, 'webauthn.create', expected);
  if (early) return early;
  const authData = parsed(() => {
    const attestation = decodeAttestationObject(
      Buffer.from(response.response.attestationObject, 'base64url'),
    );
    return attestation.get('authData');
  });
  if (!authData) return 'malformed_response';
  const flagProblem = authenticatorDataProblem(authData, expected);
  if (flagProblem) return flagProblem;
  const { credentialID, credentialPublicKey, aaguid } = authData;
  if (!credentialID || !credentialPublicKey || !aaguid) return 'malformed_response';
  let alg: unknown;
  try {
    alg = isoCBOR.decodeFirst<Map<number, unknown>>(new Uint8Array(credentialPublicKey)).get(3);
  } catch {
    return 'malformed_public_key';
  }
  if (typeof alg !== 'number') return 'malformed_public_key';
  if (!expected.algorithmIds.includes(alg)) return 'algorithm_not_allowed';
  return 'attestation_invalid';
}

/** Both ceremonies: the id must be present and equal rawId. */
function idProblem(response: { id: string; rawId: string }): Diagnosis {
  return response.id && response.id === response.rawId ? undefined : 'malformed_response';
}

/** The client data, in the library's order: type, challenge, top origin (assertions only), origin, token binding. */
function clientDataProblem(
  clientDataJSON: string,
  type: 'webauthn.get' | 'webauthn.create',
  expected: ExpectedResponse,
): Diagnosis {
  let clientData: ReturnType<typeof decodeClientDataJSON>;
  try {
    clientData = decodeClientDataJSON(clientDataJSON);
  } catch {
    return 'malformed_response';
  }
  if (clientData.type !== type) return 'client_data_type_mismatch';
  if (clientData.challenge !== expected.challenge) return 'challenge_mismatch';
  // The library refuses any top origin in an assertion (it is given no expected one).
  if (type === 'webauthn.get' && clientData.topOrigin) return 'cross_origin';
  if (!expected.origins.includes(clientData.origin)) return 'origin_mismatch';
  const { tokenBinding } = clientData;
  if (tokenBinding) {
    const statuses =
      type === 'webauthn.get'
        ? ['present', 'supported', 'notSupported']
        : ['present', 'supported', 'not-supported'];
    if (typeof tokenBinding !== 'object' || !statuses.includes(tokenBinding.status))
      return 'malformed_response';
  }
  return undefined;
}

/** The authenticator data: RP ID hash, then the flags. */
function authenticatorDataProblem(authData: AuthenticatorData, expected: ExpectedResponse): Diagnosis {
  const rpIdHash = createHash('sha256').update(expected.rpId).digest();
  if (!rpIdHash.equals(authData.rpIdHash)) return 'rp_id_mismatch';
  if (expected.requireUserPresence && !authData.flags.up) return 'user_presence_missing';
  if (expected.requireUserVerification && !authData.flags.uv) return 'user_verification_missing';
  return undefined;
}

/** Parsed authenticator data, or undefined where it cannot be read. */
function parsed(bytes: () => Uint8Array | undefined): AuthenticatorData | undefined {
  try {
    const data = bytes();
    return data ? parseAuthenticatorData(new Uint8Array(data)) : undefined;
  } catch {
    return undefined;
  }
}
