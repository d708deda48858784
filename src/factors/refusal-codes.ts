/**
 * The catalogue of refusal codes: why a sign-in, an enrolment or a removal
 * was refused, one stable snake_case code per rule, each with the rule it
 * names. Every refusal's audit row carries one as `detail.code`, beside
 * `detail.reason`, a sentence for a person (it may quote a library's message
 * and the values involved, and may change wording; the code does not). Tests,
 * metrics and operators match the code.
 *
 * Clients never see either: a refusal answers generically (`passkey_rejected`,
 * `invalid_code`, ...; src/errors.ts), so an attacker learns nothing of which
 * check failed.
 *
 * The WebAuthn layer's own codes (what a response itself gets wrong) are
 * listed in src/webauthn/ceremony-refusals.ts, which cannot import this
 * module, and are part of this catalogue. A new code is added here first (or
 * there, for a check of the WebAuthn layer).
 */
import { CEREMONY_REFUSALS } from '../webauthn/ceremony-refusals.ts';

export const REFUSAL_CODES = {
  ...CEREMONY_REFUSALS,

  // ------------------------------------------------- passkeys, around the ceremony
  challenge_missing:
    'No challenge for this ceremony: used already, expired (the pool’s ceremony timeout), or never issued.',
  challenge_user_mismatch:
    'A registration challenge issued for another WebAuthn user handle: options made for a sign-up, finished on an account.',
  unknown_credential: 'The credential is not registered in this pool.',
  wrong_user:
    'A passkey of another user than the one the interaction is for: the identified email’s, the first factor’s or the signed-in user’s.',
  first_factor_passkey: 'As second factor, the passkey that was the first factor.',
  concurrent_use:
    'Another assertion of the credential moved its counter during verification: two live copies of one device-bound key, or a race one loses. Also flagged as `passkey_counter_regression`.',
  acr_not_met:
    'A synced passkey where the request demands a device-bound one (`phrh`): verified, but not enough.',
  credential_registered: 'The new passkey’s credential is already registered in this pool.',
  passkey_limit: 'The user already has the pool’s `max_per_user` passkeys.',
  passkey_pool_full: 'The pool already stores its `max_per_pool` passkeys, all users together.',
  last_way_in: 'Removing the passkey would leave the user no way to sign in.',
  last_second_factor:
    'A second factor is required (the pool always asks for one, or an organization of the user’s requires MFA), and removing this passkey or authenticator app would leave the user none.',

  // ------------------------------------------------------------- email codes
  no_code: 'No code for this interaction: never sent, replaced by a newer one, or expired.',
  wrong_code: 'A code other than the one mailed, or than the authenticator app shows.',
  too_many_tries: 'The code’s tries are used up; it is destroyed.',
  already_used: 'The right code, taken by a concurrent use a moment before.',
  totp_replayed: 'An authenticator app code of a time step already accepted for this account (a replay).',
  email_code_not_first_factor:
    'A sign-up code for an email that has an account by now, in a pool where codes do not sign in.',

  // ------------------------------------------------------------- passwords
  unknown_email: 'A password sign-in for an email with no account.',
  no_password: 'A password sign-in for an account that has no password.',
  wrong_password: 'A password sign-in with a wrong password.',
  wrong_current_password: 'A password change whose current password is wrong.',

  // ------------------------------------------------------- recovery codes
  unknown_or_used_code: 'A recovery code that is not one of the user’s, or was used already.',

  // -------------------------------------------------------------- the flow
  cancelled: 'The user cancelled the sign-in.',
  second_factor_unattainable:
    'A second factor is required (the pool’s or the organization’s), the user has none usable here, and passkeys are off, so none can be made in the sign-in.',
  not_member:
    'A sign-in (or sign-up) for an organization the user is not a member of, or that no longer exists.',
  organization_factor:
    'A first factor the login’s organization does not accept (its passkey switch, its allowed first factors): the user signs in again with one it does.',
  acr_unattainable:
    'The request demands an acr the user cannot reach here: it needs a passkey they cannot create in this pool.',
} as const;

export type RefusalCode = keyof typeof REFUSAL_CODES;

/**
 * A refusal's audit detail: its code, and the reason (the code itself, where
 * there is no more to say). A type, not an interface, so that it is an audit
 * row's `Record<string, unknown>` detail as it is.
 */
export type Refusal = { code: RefusalCode; reason: string };

export function refusal(code: RefusalCode, reason: string = code): Refusal {
  return { code, reason };
}
