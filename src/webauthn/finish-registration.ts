/**
 * Verifies a registration response: SimpleWebAuthn runs §7.1 (challenge,
 * origin, RP ID hash, flags, algorithm, attestation statement); this adds
 * what the library leaves to the relying party, and the pool's rules:
 * - no cross-origin frame (./client-data-checks.ts);
 * - the credential public key in full: key type, curve, point, RSA size and
 *   exponent, no stray parameters (./credential-public-key.ts);
 * - the credential id is the one in the authenticator data and at most 1023
 *   bytes (§7.1 step 25 / §5.1 "credentialId");
 * - attestation required by the pool (`direct`/`enterprise`) means a
 *   statement with a certificate chain: not `none`, not self attestation;
 * - AAGUID filtering (permitted/prohibited models);
 * - `prohibit_backup_eligibility`: only device-bound credentials;
 * - smart pools: the credential must be discoverable. The options require a
 *   resident key, which a browser must honour or fail the ceremony
 *   (https://www.w3.org/TR/webauthn-3/#dom-residentkeyrequirement-required);
 *   `credProps.rk: false` says it did not, and is refused. A browser that
 *   does not report credProps (it is optional, and unsigned) is believed.
 * The verified passkey records whether it is discoverable (`discoverableOf`).
 * A refusal carries a code (./ceremony-refusals.ts) and a reason for the log
 * and audit trail.
 */
import { type RegistrationResponseJSON, verifyRegistrationResponse } from '@simplewebauthn/server';
import { decodeAttestationObject } from '@simplewebauthn/server/helpers';
import { type Refused, refused } from './ceremony-refusals.ts';
import { crossOriginProblem } from './client-data-checks.ts';
import { credentialPublicKeyProblem } from './credential-public-key.ts';
import { diagnoseRegistrationRefusal } from './diagnose-library-refusal.ts';
import { isAaguidAllowed, type PasskeyPolicy } from './passkey-policy.ts';

/** https://www.w3.org/TR/webauthn-3/#credential-id: "at most 1023 bytes long". */
const MAX_CREDENTIAL_ID_BYTES = 1023;

const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

export interface VerifiedPasskey {
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  aaguid: string;
  backupEligible: boolean;
  backupState: boolean;
  uvInitialized: boolean;
  attestationFormat: string;
  /** Whether it is a discoverable credential; null when unknown (`discoverableOf`). */
  discoverable: boolean | null;
}

export type RegistrationResult = { ok: true; passkey: VerifiedPasskey } | Refused;

export interface FinishRegistrationOptions {
  policy: PasskeyPolicy;
  response: RegistrationResponseJSON;
  /** The challenge taken from the challenge store for this ceremony. */
  expectedChallenge: string;
  /**
   * (Optional) A conditional create: the password manager made the passkey
   * without a gesture, so neither presence nor verification can be required.
   * Defaults to false.
   */
  conditional?: boolean;
}

export async function finishRegistration({
  policy,
  response,
  expectedChallenge,
  conditional = false,
}: FinishRegistrationOptions): Promise<RegistrationResult> {
  const expected = {
    challenge: expectedChallenge,
    origins: policy.origins,
    rpId: policy.rpId,
    requireUserPresence: !conditional,
    requireUserVerification: !conditional && policy.userVerification === 'required',
    algorithmIds: policy.algorithmIds,
  };
  let verification: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    verification = await verifyRegistrationResponse({
      response,
      expectedChallenge,
      expectedOrigin: [...policy.origins],
      expectedRPID: policy.rpId,
      requireUserPresence: expected.requireUserPresence,
      requireUserVerification: expected.requireUserVerification,
      supportedAlgorithmIDs: policy.algorithmIds,
    });
  } catch (error) {
    // The library's message is the reason; the code is named by looking at the response again.
    return refused(diagnoseRegistrationRefusal(response, expected), (error as Error).message);
  }
  if (!verification.verified) return refused('attestation_invalid', 'registration response did not verify');

  const info = verification.registrationInfo;
  const crossOrigin = crossOriginProblem(response.response.clientDataJSON);
  if (crossOrigin) return crossOrigin;
  if (info.credential.id !== response.id) {
    return refused('credential_id_mismatch', 'credential id differs from the one in the authenticator data');
  }
  if (Buffer.from(info.credential.id, 'base64url').length > MAX_CREDENTIAL_ID_BYTES) {
    return refused('credential_id_too_long', `credential id longer than ${MAX_CREDENTIAL_ID_BYTES} bytes`);
  }
  const keyProblem = credentialPublicKeyProblem(info.credential.publicKey, policy.algorithmIds);
  if (keyProblem) return keyProblem;
  if (policy.attestation !== 'none') {
    if (info.fmt === 'none') {
      return refused(
        'attestation_required',
        `pool requires ${policy.attestation} attestation, authenticator gave none`,
      );
    }
    const statement = decodeAttestationObject(info.attestationObject).get('attStmt');
    if (info.fmt === 'packed' && !statement.get('x5c')) {
      return refused(
        'attestation_required',
        `pool requires ${policy.attestation} attestation, authenticator gave self attestation`,
      );
    }
  }
  if (!isAaguidAllowed(policy, info.aaguid)) {
    return refused(
      'aaguid_prohibited',
      `authenticator model ${info.aaguid} is not allowed by the pool's filtering`,
    );
  }
  const backupEligible = info.credentialDeviceType === 'multiDevice';
  if (policy.prohibitBackupEligibility && backupEligible) {
    return refused(
      'backup_eligible_prohibited',
      'backup-eligible (synced) credential refused by prohibit_backup_eligibility',
    );
  }
  if (policy.mode === 'smart' && response.clientExtensionResults?.credProps?.rk === false) {
    return refused('not_discoverable', 'credential is not discoverable, which a smart pool requires');
  }

  return {
    ok: true,
    passkey: {
      credentialId: info.credential.id,
      publicKey: info.credential.publicKey,
      counter: info.credential.counter,
      transports: (response.response.transports ?? []).filter((transport) => TRANSPORTS.has(transport)),
      aaguid: info.aaguid,
      backupEligible,
      backupState: info.credentialBackedUp,
      uvInitialized: info.userVerified,
      attestationFormat: info.fmt,
      discoverable: discoverableOf(policy, response),
    },
  };
}

/**
 * Whether the new credential is discoverable: what the browser reported in
 * credProps.rk (https://www.w3.org/TR/webauthn-3/#dom-credentialpropertiesoutput-rk),
 * else what the options demanded. A smart pool requires a resident key, so
 * the authenticator made a discoverable credential or the ceremony failed
 * (https://www.w3.org/TR/webauthn-3/#dom-residentkeyrequirement-required);
 * a classic pool only prefers one, so without credProps nobody knows.
 */
function discoverableOf(policy: PasskeyPolicy, response: RegistrationResponseJSON): boolean | null {
  // The client's word, unsigned and unchecked by the shape: only a boolean counts.
  const reported: unknown = response.clientExtensionResults?.credProps?.rk;
  if (typeof reported === 'boolean') return reported;
  return policy.mode === 'smart' ? true : null;
}
