/**
 * WebAuthn challenges, bound to their pool, their ceremony and their subject
 * (an interaction, or a signed-in user for self-service), living exactly as
 * long as the pool's ceremony timeout. A challenge is taken, atomically, before
 * verification: a replayed, expired or foreign challenge finds nothing, and of
 * two concurrent verifications exactly one gets it. Expiry is judged by the
 * caller's clock (`now`, from the challenge's own `expiresAt`); the store's
 * TTL only clears what nobody took.
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
  /** Milliseconds since the epoch after which it is refused (set by `saveChallenge`). */
  expiresAt?: number;
}

const keyOf = ({ poolId, ceremony, subject }: ChallengeBinding) =>
  `webauthn:${poolId}:${ceremony}:${subject}`;

export async function saveChallenge(
  store: Pick<EphemeralStore, 'set'>,
  binding: ChallengeBinding,
  value: StoredChallenge,
  ttlSeconds: number,
  now = Date.now(),
): Promise<void> {
  await store.set(
    keyOf(binding),
    JSON.stringify({ ...value, expiresAt: now + ttlSeconds * 1000 }),
    ttlSeconds,
  );
}

/** Removes and returns the challenge; undefined when there is none (used, expired, never issued). */
export async function takeChallenge(
  store: Pick<EphemeralStore, 'take'>,
  binding: ChallengeBinding,
  now = Date.now(),
): Promise<StoredChallenge | undefined> {
  const raw = await store.take(keyOf(binding));
  if (raw === undefined) return undefined;
  const stored = JSON.parse(raw) as StoredChallenge;
  return stored.expiresAt !== undefined && now >= stored.expiresAt ? undefined : stored;
}
