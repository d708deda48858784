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
 *   (§6.1.1) and is refused (`counter_regression`: the caller flags it).
 *   Synced passkeys report 0, or per-device counters, so they are not judged by it.
 * A refusal carries a code (./ceremony-refusals.ts) and a reason for the log.
 */
import { type AuthenticationResponseJSON, verifyAuthenticationResponse } from '@simplewebauthn/server';
import { parseAuthenticatorData } from '@simplewebauthn/server/helpers';
import { type Refused, refused } from './ceremony-refusals.ts';
import { crossOriginProblem } from './client-data-checks.ts';
import { diagnoseAssertionRefusal } from './diagnose-library-refusal.ts';
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
  | Refused;

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
    // The library's message is the reason; the code is named by looking at the response again.
    const code = diagnoseAssertionRefusal(response, {
      challenge: expectedChallenge,
      origins: policy.origins,
      rpId: policy.rpId,
      requireUserPresence: true,
      requireUserVerification: policy.userVerification === 'required',
    });
    return refused(code, (error as Error).message);
  }
  if (!verification.verified) return refused('signature_invalid', 'assertion did not verify');
  const crossOrigin = crossOriginProblem(response.response.clientDataJSON);
  if (crossOrigin) return crossOrigin;

  const userHandle = response.response.userHandle;
  if (userHandle && userHandle !== ownerUserHandle)
    return refused('user_handle_mismatch', 'user handle is not the credential owner');
  if (!userHandle && requireUserHandle) return refused('user_handle_missing', 'user handle missing');
  const { flags, counter } = parseAuthenticatorData(
    Buffer.from(response.response.authenticatorData, 'base64url'),
  );
  if (flags.be !== credential.backupEligible) {
    return refused(
      'backup_eligibility_changed',
      `backup eligibility changed from ${credential.backupEligible} to ${flags.be}`,
    );
  }
  if (policy.prohibitBackupEligibility && credential.backupEligible) {
    return refused(
      'backup_eligible_prohibited',
      'backup-eligible credential refused by prohibit_backup_eligibility',
    );
  }
  if (!isAaguidAllowed(policy, credential.aaguid)) {
    return refused(
      'aaguid_prohibited',
      `authenticator model ${credential.aaguid} is no longer allowed by the pool's filtering`,
    );
  }
  if (!credential.backupEligible && credential.counter > 0 && counter <= credential.counter) {
    return refused(
      'counter_regression',
      `signature counter went from ${credential.counter} to ${counter}: possible cloned authenticator`,
    );
  }
  return {
    ok: true,
    newCounter: verification.authenticationInfo.newCounter,
    userPresent: flags.up,
    userVerified: verification.authenticationInfo.userVerified,
    backupState: verification.authenticationInfo.credentialBackedUp,
  };
}
