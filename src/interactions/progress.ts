/**
 * What one login has achieved so far, kept per interaction in the ephemeral
 * store and gone with the interaction. Typed, never a free-form blob: every
 * field is something `nextStep` or the finishing step reads.
 */

import type { Method } from '../factors/methods.ts';
import type { EphemeralStore } from '../storage/types.ts';

export type { Method } from '../factors/methods.ts';

/** One factor the user completed in this interaction. */
export interface CompletedFactor {
  method: Method;
  /** RFC 8176 methods it proved, e.g. ['pop', 'hwk', 'user']. */
  amr: string[];
  /** For a passkey: phrh (device-bound) or phr (synced). */
  acr?: 'phr' | 'phrh';
  /** A passkey verified with user verification: multi-factor on its own. */
  multiFactor: boolean;
  /** Epoch seconds. */
  at: number;
  credentialId?: string;
}

export interface Progress {
  /** The email the user identified with, normalised; proves nothing by itself. */
  email?: string;
  /** The account a factor proved. Identify alone never sets it. */
  userId?: string;
  /** Email proven by a code, no account yet: the user is signing up. */
  signup?: {
    email: string;
    /**
     * The WebAuthn user handle (base64url) of this sign-up, made when the
     * sign-up begins (the email proven) and carried by every creation
     * options call, concurrent ones included, so an authenticator
     * asked twice replaces its passkey instead of keeping an orphan beside
     * it; the new account gets it.
     * https://www.w3.org/TR/webauthn-3/#dom-publickeycredentialuserentity-id
     */
    webauthnUserId?: string;
  };
  factors: CompletedFactor[];
  /** The user declined an optional passkey enrolment in this interaction. */
  enrollDeclined?: boolean;
  /** The grant the user consented to in this interaction (clients that are not first-party). */
  grantId?: string;
  /** A recovery code was used: the user is offered to replace a lost passkey. */
  recovered?: boolean;
  /** The recovery step was completed or skipped. */
  recoveryHandled?: boolean;
  /** The passkey offer was shown (counted once in metrics). */
  offerShown?: boolean;
  /**
   * The signed-in user a step-up is for (the interaction's session), before
   * any factor: the steps can then tell whether they have a passkey.
   */
  sessionUserId?: string;
  /** An email code proved the email in this interaction, without counting as a factor (prove_email). */
  emailProven?: boolean;
  /** A code was mailed for this interaction and not yet used: the page shows the code field. */
  codeSent?: boolean;
  /**
   * The organization this login is for, where the request named none: the
   * user's only one, or the one they picked.
   */
  organizationId?: string;
  /**
   * The first factor the login's organization does not accept: the user
   * signs in again with one it does (the page says why).
   */
  organizationRefused?: Method;
  /** A password was typed here (to sign in or chosen at sign-up): its password manager is at hand. */
  passwordEntered?: boolean;
}

export const emptyProgress = (): Progress => ({ factors: [] });

const keyOf = (poolId: string, uid: string) => `login:${poolId}:${uid}`;

/** Progress as loaded, with its JSON as stored (undefined when there is none yet). */
export interface ProgressRecord {
  raw: string | undefined;
  progress: Progress;
}

/** The stored progress, and its JSON as stored (undefined when there is none yet). */
export async function loadProgressRecord(
  store: Pick<EphemeralStore, 'get'>,
  poolId: string,
  uid: string,
): Promise<ProgressRecord> {
  const raw = await store.get(keyOf(poolId, uid));
  return { raw: raw ?? undefined, progress: raw ? (JSON.parse(raw) as Progress) : emptyProgress() };
}

/** Saves progress (as JSON) for as long as the interaction lives. */
export async function saveProgress(
  store: Pick<EphemeralStore, 'set'>,
  poolId: string,
  uid: string,
  raw: string,
  ttlSeconds: number,
): Promise<void> {
  await store.set(keyOf(poolId, uid), raw, Math.max(ttlSeconds, 1));
}
