/**
 * The codes of what the WebAuthn layer refuses in a response, one per rule,
 * each with the rule it names. A refused verification carries one of them
 * (for tests, metrics and whoever reads the audit trail to match on) beside a
 * reason (for a person reading the log: the library's or our own sentence,
 * with the values involved). Codes are stable; reasons may change wording.
 *
 * The login's own refusals (no challenge, an unknown credential, a wrong
 * password, ...) add theirs in src/factors/refusal-codes.ts, the whole
 * catalogue; these are listed here because this layer cannot import that one.
 */

export const CEREMONY_REFUSALS = {
  malformed_response:
    'The response is not the JSON WebAuthn defines (shape, type, sizes, id and rawId), or its client data, authenticator data or attestation object cannot be read.',
  client_data_type_mismatch:
    'The client data is of the other ceremony: `webauthn.create` in an assertion, or `webauthn.get` in a registration (§7.2 step 11, §7.1 step 7).',
  challenge_mismatch:
    'The client data answers another challenge than the one taken for this ceremony: a replayed response, or one to another interaction’s or pool’s options.',
  cross_origin:
    'The ceremony ran in a cross-origin frame or names a top origin; Postern’s pages are never framed.',
  origin_mismatch: 'The client data’s origin is not exactly one of the pool’s origins.',
  rp_id_mismatch: 'The authenticator data is for another RP ID than the pool’s.',
  user_presence_missing:
    'The authenticator did not report the user present (UP flag), where a gesture is required.',
  user_verification_missing:
    'The authenticator did not verify the user (UV flag) where the pool requires user verification.',
  signature_invalid: 'The assertion’s signature does not verify with the stored public key.',
  user_handle_mismatch: 'The assertion’s user handle is not the credential owner’s (§7.2 step 6).',
  user_handle_missing:
    'A usernameless sign-in’s assertion carries no user handle, which is what names the user.',
  backup_eligibility_changed:
    'The backup eligibility flag differs from the one the passkey was registered with (§6.1.3).',
  backup_eligible_prohibited:
    'A backup-eligible (synced) passkey in a pool with `prohibit_backup_eligibility`.',
  aaguid_prohibited: 'The authenticator model (AAGUID) is not allowed by the pool’s filtering.',
  counter_regression:
    'A device-bound passkey’s signature counter did not increase: possibly a cloned authenticator (§6.1.1). Also flagged as `passkey_counter_regression`.',
  attestation_invalid:
    'The registration’s attestation statement does not verify, or is of a format Postern does not know.',
  attestation_required:
    'The pool requires `direct` or `enterprise` attestation and the authenticator gave none, or only self attestation.',
  credential_id_mismatch: 'The registration’s id is not the credential id in its authenticator data.',
  credential_id_too_long: 'The credential id is longer than 1023 bytes (§5.1).',
  malformed_public_key:
    'The credential public key is not a well-formed COSE key of its algorithm: not CBOR, wrong key type or curve, missing or extra parameters, wrong lengths, not a point.',
  algorithm_not_allowed: 'The credential public key’s algorithm is not one the pool allows.',
  weak_public_key:
    'The credential public key is well formed but weak: an RSA modulus or exponent out of bounds, an Ed25519 point of small order.',
  not_discoverable:
    'A smart pool’s passkey that the browser reports as not discoverable (`credProps.rk: false`).',
} as const;

export type CeremonyRefusalCode = keyof typeof CEREMONY_REFUSALS;

/** A refused check: the code to match on, and the reason for the log and audit trail. */
export interface Refused {
  ok: false;
  code: CeremonyRefusalCode;
  reason: string;
}

export function refused(code: CeremonyRefusalCode, reason: string): Refused {
  return { ok: false, code, reason };
}
