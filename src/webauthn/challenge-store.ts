/**
 * WebAuthn challenges, bound to their pool, their ceremony and their subject
 * (an interaction, or a signed-in user for self-service), living exactly as
 * long as the pool's ceremony timeout. A challenge is taken, atomically, before
 * verification: a replayed, expired or foreign challenge finds nothing, and of
 * two concurrent verifications exactly one gets it.
 * https://www.w3.org/TR/webauthn-3/#sctn-cryptographic-challenges
 */
import type { EphemeralStore } from '../storage/types.ts';

export type Ceremony = 'registration' | 'authentication';

export interface ChallengeBinding {
  poolId: string;
  ceremony: Ceremony;
  /** `interaction:{uid}` or `user:{id}`. */
  subject: string;
}

/** What is remembered with a challenge: the challenge and whatever the verify step must trust. */
export interface StoredChallenge {
  challenge: string;
  /** Registration: the WebAuthn user handle the options carried. */
  webauthnUserId?: string;
  /** The account the ceremony is for, when known. */
  userId?: string;
  /** Registration by conditional create (no user gesture, so no UP/UV to require). */
  conditional?: boolean;
}

const keyOf = ({ poolId, ceremony, subject }: ChallengeBinding) =>
  `webauthn:${poolId}:${ceremony}:${subject}`;

export async function saveChallenge(
  store: Pick<EphemeralStore, 'set'>,
  binding: ChallengeBinding,
  value: StoredChallenge,
  ttlSeconds: number,
): Promise<void> {
  await store.set(keyOf(binding), JSON.stringify(value), ttlSeconds);
}

/** Removes and returns the challenge; undefined when there is none (used, expired, never issued). */
export async function takeChallenge(
  store: Pick<EphemeralStore, 'take'>,
  binding: ChallengeBinding,
): Promise<StoredChallenge | undefined> {
  const raw = await store.take(keyOf(binding));
  return raw === undefined ? undefined : (JSON.parse(raw) as StoredChallenge);
}
