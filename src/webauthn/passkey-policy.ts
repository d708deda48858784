/**
 * The one place that turns a pool's `passkeys` block into WebAuthn
 * parameters (Logto's rule: one file fixes the policy). Every ceremony reads
 * it; nothing else interprets the pool file's passkey settings.
 */
import type { PoolConfig } from '../config/types.ts';

/** COSE algorithm identifiers, https://www.iana.org/assignments/cose/cose.xhtml#algorithms */
const COSE_IDS = { EdDSA: -8, ES256: -7, RS256: -257 } as const;

export interface PasskeyPolicy {
  poolId: string;
  rpId: string;
  rpName: string;
  /**
   * Where an account lives, shown beside its email in authenticators' pickers
   * (the pool's display name), so that a user with passkeys for several
   * pools under one RP ID can tell them apart.
   */
  accountLabel: string;
  origins: readonly string[];
  /** smart: discoverable credentials, usernameless; classic: allowCredentials. */
  mode: 'smart' | 'classic';
  userVerification: 'required' | 'preferred' | 'discouraged';
  algorithmIds: number[];
  attestation: 'none' | 'direct' | 'enterprise';
  authenticatorAttachment: 'platform' | 'cross-platform' | undefined;
  /** Most passkeys one user may have (`max_per_user`). */
  maxPerUser: number;
  /** (Optional) Most passkeys the pool may store (`max_per_pool`). Undefined: no ceiling. */
  maxPerPool?: number;
  permittedAaguids: ReadonlySet<string>;
  prohibitedAaguids: ReadonlySet<string>;
  prohibitBackupEligibility: boolean;
  /** Ceremony timeout, which is also the challenge's lifetime. */
  timeoutSeconds: number;
}

export function createPasskeyPolicy(pool: PoolConfig): PasskeyPolicy {
  const { passkeys } = pool;
  return {
    poolId: pool.id,
    rpId: passkeys.rp.id,
    rpName: passkeys.rp.display_name,
    accountLabel: pool.display_name,
    origins: passkeys.rp.origins,
    mode: passkeys.mode,
    userVerification: passkeys.user_verification,
    algorithmIds: passkeys.registration.algorithms.map((name) => COSE_IDS[name]),
    attestation: passkeys.registration.attestation,
    authenticatorAttachment:
      passkeys.registration.authenticator_attachment === 'any'
        ? undefined
        : passkeys.registration.authenticator_attachment,
    maxPerUser: passkeys.registration.max_per_user,
    maxPerPool: passkeys.registration.max_per_pool,
    permittedAaguids: new Set(passkeys.filtering.permitted_aaguids),
    prohibitedAaguids: new Set(passkeys.filtering.prohibited_aaguids),
    prohibitBackupEligibility: passkeys.filtering.prohibit_backup_eligibility,
    timeoutSeconds: passkeys.timeout,
  };
}

/** Whether the pool's filtering lets an authenticator model (AAGUID) in. */
export function isAaguidAllowed(policy: PasskeyPolicy, aaguid: string): boolean {
  if (policy.prohibitedAaguids.has(aaguid)) return false;
  return policy.permittedAaguids.size === 0 || policy.permittedAaguids.has(aaguid);
}
