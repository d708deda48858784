/**
 * Verifies an assertion against a stored passkey. SimpleWebAuthn runs §7.2
 * (challenge, origin, RP ID hash, UP/UV flags, signature); after it, this
 * checks what the library leaves to the relying party:
 * - no cross-origin frame (./client-data-checks.ts);
 * - the user handle, when given, is the credential owner's (§7.2 step 6);
 *   usernameless sign-in requires one;
 * - the backup eligibility flag cannot change after registration (§6.1.3);
 * - the pool's filtering still admits the credential (AAGUID, device-bound only);
 * - the signature counter: on a device-bound credential with a non-zero
 *   counter, a value that does not increase means a cloned authenticator
 *   (§6.1.1) and is refused and flagged. Synced passkeys report 0, or per-device
 *   counters, so they are not judged by it.
 */
import { type AuthenticationResponseJSON, verifyAuthenticationResponse } from '@simplewebauthn/server';
import { parseAuthenticatorData } from '@simplewebauthn/server/helpers';
import { crossOriginProblem } from './client-data-checks.ts';
import { isAaguidAllowed, type PasskeyPolicy } from './passkey-policy.ts';

export interface StoredCredential {
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: readonly string[];
  aaguid: string;
  backupEligible: boolean;
}

export type AuthenticationResult =
  | {
      ok: true;
      newCounter: number;
      userPresent: boolean;
      userVerified: boolean;
      backupState: boolean;
    }
  | { ok: false; reason: string; counterRegression?: true };

export interface FinishAuthenticationOptions {
  policy: PasskeyPolicy;
  response: AuthenticationResponseJSON;
  /** The challenge taken from the challenge store for this ceremony. */
  expectedChallenge: string;
  credential: StoredCredential;
  /** base64url user handle of the credential's owner. */
  ownerUserHandle: string;
  /** Usernameless sign-in identifies the user by the handle, so it must be present. */
  requireUserHandle: boolean;
}

export async function finishAuthentication(
  options: FinishAuthenticationOptions,
): Promise<AuthenticationResult> {
  const { policy, response, expectedChallenge, credential, ownerUserHandle, requireUserHandle } = options;

  // First what only the authenticator can produce (§7.2 steps 11-21: type,
  // challenge, origin, RP ID hash, flags, signature). Only an assertion that
  // passes is judged further, so a replay or a forgery cannot raise a clone
  // alarm or be blamed on anything but what it is.
  let verification: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
  try {
    verification = await verifyAuthenticationResponse({
      response,
      expectedChallenge,
      expectedOrigin: [...policy.origins],
      expectedRPID: policy.rpId,
      requireUserVerification: policy.userVerification === 'required',
      credential: {
        id: credential.credentialId,
        publicKey: new Uint8Array(credential.publicKey),
        // 0 turns the library's counter check off: it runs before the signature
        // check there, and synced passkeys are not judged by counters at all.
        counter: 0,
        transports: [...credential.transports] as AuthenticatorTransport[],
      },
    });
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  if (!verification.verified) return { ok: false, reason: 'assertion did not verify' };
  const crossOrigin = crossOriginProblem(response.response.clientDataJSON);
  if (crossOrigin) return { ok: false, reason: crossOrigin };

  const userHandle = response.response.userHandle;
  if (userHandle ? userHandle !== ownerUserHandle : requireUserHandle) {
    return {
      ok: false,
      reason: userHandle ? 'user handle is not the credential owner' : 'user handle missing',
    };
  }
  const { flags, counter } = parseAuthenticatorData(
    Buffer.from(response.response.authenticatorData, 'base64url'),
  );
  if (flags.be !== credential.backupEligible) {
    return {
      ok: false,
      reason: `backup eligibility changed from ${credential.backupEligible} to ${flags.be}`,
    };
  }
  if (policy.prohibitBackupEligibility && credential.backupEligible) {
    return { ok: false, reason: 'backup-eligible credential refused by prohibit_backup_eligibility' };
  }
  if (!isAaguidAllowed(policy, credential.aaguid)) {
    return {
      ok: false,
      reason: `authenticator model ${credential.aaguid} is no longer allowed by the pool's filtering`,
    };
  }
  if (!credential.backupEligible && credential.counter > 0 && counter <= credential.counter) {
    return {
      ok: false,
      reason: `signature counter went from ${credential.counter} to ${counter}: possible cloned authenticator`,
      counterRegression: true,
    };
  }
  return {
    ok: true,
    newCounter: verification.authenticationInfo.newCounter,
    userPresent: flags.up,
    userVerified: verification.authenticationInfo.userVerified,
    backupState: verification.authenticationInfo.credentialBackedUp,
  };
}
