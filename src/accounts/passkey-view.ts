/**
 * A passkey as every API shows it (self-service, the recovery step, admin):
 * never the public key or the counter.
 */
import type { Passkey } from '../storage/types.ts';
import { authenticatorName } from '../webauthn/authenticator-names.ts';

export interface PasskeyView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  aaguid: string;
  /** The authenticator model's name, where the AAGUID is known. */
  authenticator: string | null;
  /** Backed up (synced) right now: the BS flag as last seen. */
  backed_up: boolean;
  /** Not backup-eligible: the key cannot leave its authenticator. */
  device_bound: boolean;
}

export function toPasskeyView(passkey: Passkey): PasskeyView {
  return {
    id: passkey.id,
    name: passkey.name,
    created_at: passkey.createdAt.toISOString(),
    last_used_at: passkey.lastUsedAt?.toISOString() ?? null,
    aaguid: passkey.aaguid,
    authenticator: authenticatorName(passkey.aaguid) ?? null,
    backed_up: passkey.backupState,
    device_bound: !passkey.backupEligible,
  };
}
