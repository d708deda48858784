/**
 * Verifies a registration response: SimpleWebAuthn runs §7.1 (challenge,
 * origin, RP ID hash, flags, algorithm, attestation statement); this adds the
 * pool's rules the library cannot know:
 * - attestation required by the pool (`direct`/`enterprise`) means a real statement, not `none`;
 * - AAGUID filtering (permitted/prohibited models);
 * - `prohibit_backup_eligibility`: only device-bound credentials;
 * - smart pools: the credential must be discoverable (credProps.rk not false).
 * A refusal carries a reason for the log and audit trail only.
 */
import { type RegistrationResponseJSON, verifyRegistrationResponse } from '@simplewebauthn/server';
import { isAaguidAllowed, type PasskeyPolicy } from './passkey-policy.ts';

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
}

export type RegistrationResult = { ok: true; passkey: VerifiedPasskey } | { ok: false; reason: string };

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
  let verification: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    verification = await verifyRegistrationResponse({
      response,
      expectedChallenge,
      expectedOrigin: [...policy.origins],
      expectedRPID: policy.rpId,
      requireUserPresence: !conditional,
      requireUserVerification: !conditional && policy.userVerification === 'required',
      supportedAlgorithmIDs: policy.algorithmIds,
    });
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  if (!verification.verified) return { ok: false, reason: 'registration response did not verify' };

  const info = verification.registrationInfo;
  if (policy.attestation !== 'none' && info.fmt === 'none') {
    return { ok: false, reason: `pool requires ${policy.attestation} attestation, authenticator gave none` };
  }
  if (!isAaguidAllowed(policy, info.aaguid)) {
    return { ok: false, reason: `authenticator model ${info.aaguid} is not allowed by the pool's filtering` };
  }
  const backupEligible = info.credentialDeviceType === 'multiDevice';
  if (policy.prohibitBackupEligibility && backupEligible) {
    return {
      ok: false,
      reason: 'backup-eligible (synced) credential refused by prohibit_backup_eligibility',
    };
  }
  if (policy.mode === 'smart' && response.clientExtensionResults?.credProps?.rk === false) {
    return { ok: false, reason: 'credential is not discoverable, which a smart pool requires' };
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
    },
  };
}
