/**
 * Passkey as a sign-in factor. `begin` issues request options and binds
 * their challenge to the pool, the ceremony and the interaction. A
 * verification starts with `takeSignInChallenge` (atomically, before any
 * other check, so every refusal that follows has spent it, whatever its
 * cause); `finish` then checks the response's shape, finds the credential in
 * this pool only, checks it belongs to the identified user when there is one,
 * verifies the assertion with the pool's policy, lets the caller judge the
 * verified passkey (`accept`: a second factor must be another credential, a
 * step-up a device-bound one), and only then records the use. Every refusal
 * of the ceremony is a `PasskeyRefused` with its code (../refusal-codes.ts)
 * and the real reason for the log (`accept` may throw its own); nothing is
 * written.
 */

import { normaliseEmail } from '../../accounts/email.ts';
import type { Account, DurableStore, EphemeralStore, Passkey, User } from '../../storage/types.ts';
import { beginAuthentication } from '../../webauthn/begin-authentication.ts';
import {
  type ChallengeBinding,
  type StoredChallenge,
  saveChallenge,
  takeChallenge,
} from '../../webauthn/challenge-store.ts';
import { decoyCredentials } from '../../webauthn/decoy-credentials.ts';
import { finishAuthentication } from '../../webauthn/finish-authentication.ts';
import type { PasskeyPolicy } from '../../webauthn/passkey-policy.ts';
import { shapeAuthenticationResponse } from '../../webauthn/response-shapes.ts';
import type { RefusalCode } from '../refusal-codes.ts';

/** A refused ceremony: `code` names the rule, `reason` says it for the log; both go to the audit trail only. */
export class PasskeyRefused extends Error {
  readonly code: RefusalCode;
  readonly reason: string;
  readonly userId: string | undefined;
  readonly credentialId: string | undefined;

  constructor(code: RefusalCode, reason: string, details: { userId?: string; credentialId?: string } = {}) {
    super(reason);
    this.name = 'PasskeyRefused';
    this.code = code;
    this.reason = reason;
    this.userId = details.userId;
    this.credentialId = details.credentialId;
  }

  /** A counter that did not move as a single authenticator's would: flagged as a possible clone. */
  get counterRegression(): boolean {
    return this.code === 'counter_regression' || this.code === 'concurrent_use';
  }
}

export interface PasskeySignInDeps {
  durable: Pick<DurableStore, 'users' | 'passkeys'>;
  ephemeral: Pick<EphemeralStore, 'set' | 'take'>;
  /** Key for decoy credential ids (derived from the operator secret). */
  decoyKey: Uint8Array;
  /** (Optional) Milliseconds since the epoch: when challenges expire. Defaults to the system clock. */
  clock?: () => number;
}

/** Where the challenge of an interaction's sign-in lives, and who may answer it. */
export interface SignInScope {
  policy: PasskeyPolicy;
  binding: ChallengeBinding;
  /**
   * The email the user identified with, if any, in either mode. Options then
   * list that user's credentials (or decoys, for an email without any), and
   * only they may answer.
   */
  email?: string;
  /** A user already signed in by a first factor: a second-factor passkey must be theirs. */
  userId?: string;
  /** (Optional) A credential not to offer: the one that was the first factor. */
  excludeCredentialId?: string;
}

const NO_USER = '00000000-0000-0000-0000-000000000000';

export async function beginPasskeySignIn(
  deps: PasskeySignInDeps,
  { policy, binding, email, userId, excludeCredentialId }: SignInScope,
) {
  let allowCredentials: Array<{ credentialId: string; transports: readonly string[] }> = [];
  let allowedUserId: string | null | undefined;
  if (userId !== undefined) {
    allowCredentials = (await deps.durable.passkeys.listByUser(policy.poolId, userId)).filter(
      (passkey) => passkey.credentialId !== excludeCredentialId,
    );
    allowedUserId = userId;
  } else if (email !== undefined) {
    // The same two queries whether or not the account exists, so timing tells nothing.
    const user = await deps.durable.users.findByEmail(policy.poolId, email);
    const passkeys = await deps.durable.passkeys.listByUser(policy.poolId, user?.id ?? NO_USER);
    allowedUserId = user?.id ?? null;
    allowCredentials = passkeys.length > 0 ? passkeys : decoyCredentials(deps.decoyKey, policy.poolId, email);
  }
  const options = await beginAuthentication({ policy, allowCredentials });
  await saveChallenge(
    deps.ephemeral,
    binding,
    { challenge: options.challenge, ...(allowedUserId !== undefined ? { userId: allowedUserId ?? '' } : {}) },
    policy.timeoutSeconds,
    deps.clock?.(),
  );
  return options;
}

export interface PasskeySignIn {
  user: User;
  /** The user with what they enrolled (loaded with the user, for the next step). */
  account: Account;
  passkey: Passkey;
  userPresent: boolean;
  userVerified: boolean;
}

/**
 * (Optional) The caller's last word on a verified passkey, before anything is
 * recorded: throw to refuse (a `PasskeyRefused`, or an error of its own).
 */
export type AcceptPasskey = (signIn: PasskeySignIn) => void;

/**
 * Takes the interaction's sign-in challenge: the first thing a verification
 * does. Undefined when there is none (used, expired, never issued); `finish`
 * refuses then.
 */
export function takeSignInChallenge(
  deps: Pick<PasskeySignInDeps, 'ephemeral' | 'clock'>,
  binding: ChallengeBinding,
): Promise<StoredChallenge | undefined> {
  return takeChallenge(deps.ephemeral, binding, deps.clock?.());
}

/** What a verification checks against: the pool's policy and the challenge it took. */
export interface FinishSignInScope {
  policy: PasskeyPolicy;
  /** What `takeSignInChallenge` returned. */
  challenge: StoredChallenge | undefined;
  /**
   * (Optional) The email the interaction is identified with now: only that
   * user's passkey may answer, whatever the challenge was issued for (options
   * fetched before the user typed the email, for autofill, bind no one).
   * Defaults to none.
   */
  email?: string;
}

/**
 * @param untrusted The response as the request carried it: its shape is checked here.
 * @throws {PasskeyRefused} for any refused ceremony; whatever `accept` throws.
 */
export async function finishPasskeySignIn(
  deps: PasskeySignInDeps,
  { policy, challenge: stored, email }: FinishSignInScope,
  untrusted: unknown,
  accept: AcceptPasskey = () => {},
): Promise<PasskeySignIn> {
  if (!stored)
    throw new PasskeyRefused(
      'challenge_missing',
      'no challenge for this interaction (used, expired or never issued)',
    );
  const shaped = shapeAuthenticationResponse(untrusted);
  if (!shaped.ok) throw new PasskeyRefused(shaped.code, shaped.reason);
  const { response } = shaped;

  const found = await deps.durable.passkeys.findWithOwner(policy.poolId, response.id);
  if (!found)
    throw new PasskeyRefused('unknown_credential', 'unknown credential (not registered in this pool)', {
      credentialId: response.id,
    });
  const { passkey, owner: account } = found;
  const { user } = account;
  const refuse = (code: RefusalCode, reason: string) =>
    new PasskeyRefused(code, reason, { userId: passkey.userId, credentialId: passkey.credentialId });

  // A challenge issued for an identified email may only be answered by that user's passkey,
  // and so may any challenge once the interaction has an identified email.
  if (stored.userId !== undefined && stored.userId !== passkey.userId) {
    throw refuse('wrong_user', 'credential does not belong to the identified user');
  }
  // Emails are unique in a pool: the owner's email is the identified one, or this is another user.
  if (email !== undefined && user.email !== normaliseEmail(email))
    throw refuse('wrong_user', 'credential does not belong to the identified user');

  const result = await finishAuthentication({
    policy,
    response,
    expectedChallenge: stored.challenge,
    credential: passkey,
    ownerUserHandle: user.webauthnUserId,
    // Without an identified email, the user handle is what identifies the user.
    requireUserHandle: stored.userId === undefined,
  });
  if (!result.ok) throw refuse(result.code, result.reason);

  const signIn = {
    user,
    account,
    passkey,
    userPresent: result.userPresent,
    userVerified: result.userVerified,
  };
  accept(signIn);
  const recorded = await deps.durable.passkeys.recordUse(passkey.id, {
    previousCounter: passkey.counter,
    counter: result.newCounter,
    backupState: result.backupState,
    usedAt: new Date(),
  });
  // Another assertion of this credential moved the counter since it was read:
  // two live copies of one device-bound key, or a race that one of them loses.
  if (!recorded)
    throw refuse('concurrent_use', 'signature counter changed during verification (concurrent use)');
  return signIn;
}
