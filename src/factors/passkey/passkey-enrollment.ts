/**
 * Creating a passkey for an account (existing, or being signed up). `begin`
 * issues creation options with the user's WebAuthn handle and existing
 * passkeys (excludeCredentials) and binds the challenge. A verification
 * starts with `takeEnrollmentChallenge` (before any other check, so every
 * refusal that follows has spent it); `finish` checks the response's shape,
 * verifies the registration with the pool's policy, and returns the
 * credential to store. Storing it (with the per-user limit, in one
 * transaction) is the caller's, since sign-up creates the user at the same time.
 */
import { randomBytes } from 'node:crypto';
import type { EphemeralStore, Passkey } from '../../storage/types.ts';
import { defaultPasskeyName } from '../../webauthn/authenticator-names.ts';
import { beginRegistration } from '../../webauthn/begin-registration.ts';
import {
  type ChallengeBinding,
  type StoredChallenge,
  saveChallenge,
  takeChallenge,
} from '../../webauthn/challenge-store.ts';
import { finishRegistration, type VerifiedPasskey } from '../../webauthn/finish-registration.ts';
import type { PasskeyPolicy } from '../../webauthn/passkey-policy.ts';
import { shapeRegistrationResponse } from '../../webauthn/response-shapes.ts';
import { PasskeyRefused } from './passkey-sign-in.ts';

export interface EnrollmentSubject {
  /** The account's handle, or the sign-up's (`newUserHandle`). */
  webauthnUserId: string;
  email: string;
  name?: string | null;
  existing: Pick<Passkey, 'credentialId' | 'transports'>[];
  /** (Optional) What the passkey is for, beside the email: the organization's name. Defaults to the pool's. */
  label?: string;
}

/**
 * A fresh WebAuthn user handle for a sign-up: 32 random bytes, never derived
 * from the account or the email (https://www.w3.org/TR/webauthn-3/#sctn-user-handle-privacy).
 */
export function newUserHandle(): string {
  return randomBytes(32).toString('base64url');
}

export async function beginPasskeyEnrollment(
  ephemeral: Pick<EphemeralStore, 'set'>,
  { policy, binding }: { policy: PasskeyPolicy; binding: ChallengeBinding },
  subject: EnrollmentSubject,
  {
    conditional = false,
    now,
  }: { conditional?: boolean /** Milliseconds since the epoch. */; now?: number } = {},
) {
  const { webauthnUserId, label = policy.accountLabel } = subject;
  const options = await beginRegistration({
    policy,
    // "ada@example.com (Acme)": pickers show the name, some the display name too.
    user: {
      webauthnUserId,
      name: `${subject.email} (${label})`,
      displayName: `${subject.name ?? subject.email} (${label})`,
    },
    existing: subject.existing,
    conditional,
  });
  await saveChallenge(
    ephemeral,
    binding,
    { challenge: options.challenge, webauthnUserId, ...(conditional ? { conditional } : {}) },
    policy.timeoutSeconds,
    now,
  );
  return options;
}

export interface Enrollment {
  passkey: VerifiedPasskey & { name: string };
  /** The handle the authenticator stored; a sign-up's account must get it. */
  webauthnUserId: string;
  /** Made by conditional create, without a user gesture. */
  conditional: boolean;
}

/**
 * Takes the registration challenge: the first thing a verification does.
 * Undefined when there is none (used, expired, never issued); `finish`
 * refuses then.
 */
export function takeEnrollmentChallenge(
  ephemeral: Pick<EphemeralStore, 'take'>,
  binding: ChallengeBinding,
  /** Milliseconds since the epoch. Defaults to the system clock. */
  now?: number,
): Promise<StoredChallenge | undefined> {
  return takeChallenge(ephemeral, binding, now);
}

/** What a verification checks against: the pool's policy and the challenge it took. */
export interface EnrollmentTarget {
  policy: PasskeyPolicy;
  /** What `takeEnrollmentChallenge` returned. */
  challenge: StoredChallenge | undefined;
}

/**
 * @param untrusted The response as the request carried it: its shape is checked here.
 * @param options.userHandle (Optional) The handle of the account the passkey is
 *   for. The challenge must have been issued for it: options made for a sign-up
 *   (a fresh handle) cannot finish on an account that exists by then, whose
 *   passkeys would then carry a handle that is not its own. Defaults to none
 *   (a sign-up: the challenge's handle becomes the new account's).
 * @throws {PasskeyRefused} for any refused ceremony.
 */
export async function finishPasskeyEnrollment(
  { policy, challenge: stored }: EnrollmentTarget,
  untrusted: unknown,
  { name, userHandle }: { name?: string; userHandle?: string },
): Promise<Enrollment> {
  if (!stored?.webauthnUserId)
    throw new PasskeyRefused(
      'challenge_missing',
      'no registration challenge (used, expired or never issued)',
    );
  const shaped = shapeRegistrationResponse(untrusted);
  if (!shaped.ok) throw new PasskeyRefused(shaped.code, shaped.reason);
  const { response } = shaped;
  if (userHandle !== undefined && stored.webauthnUserId !== userHandle) {
    throw new PasskeyRefused(
      'challenge_user_mismatch',
      'registration challenge was issued for another user handle',
      { credentialId: response.id },
    );
  }
  const conditional = stored.conditional ?? false;
  const result = await finishRegistration({
    policy,
    response,
    expectedChallenge: stored.challenge,
    conditional,
  });
  if (!result.ok) throw new PasskeyRefused(result.code, result.reason, { credentialId: response.id });
  return {
    passkey: { ...result.passkey, name: name?.trim() || defaultPasskeyName(result.passkey) },
    webauthnUserId: stored.webauthnUserId,
    conditional,
  };
}
