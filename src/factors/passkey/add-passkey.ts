/**
 * Adding a passkey to an existing account, for every path outside the login
 * (self-service, the enrolment link): verify the registration against the
 * challenge the caller took (first, so that every refusal spent it), store
 * the credential the caller's way (a plain insert within the limits, or an
 * enrolment link's redemption), audit the outcome, and hand out the user's
 * first recovery codes where the pool uses them. Every refusal is audited
 * and answered the same way on every path.
 */
import type { AuditTrail } from '../../accounts/audit-trail.ts';
import type { PoolConfig } from '../../config/types.ts';
import { errorOf, passkeyLimit, passkeyPoolFull } from '../../errors.ts';
import type { Logger } from '../../logging/create-logger.ts';
import { LimitExceededError, UniqueViolationError } from '../../storage/errors.ts';
import type { Passkey, RecoveryCodeRepository } from '../../storage/types.ts';
import type { StoredChallenge } from '../../webauthn/challenge-store.ts';
import type { PasskeyPolicy } from '../../webauthn/passkey-policy.ts';
import { issueFirstRecoveryCodes } from '../recovery-code/issue-recovery-codes.ts';
import { refusal } from '../refusal-codes.ts';
import { type Enrollment, finishPasskeyEnrollment } from './passkey-enrollment.ts';
import { PasskeyRefused } from './passkey-sign-in.ts';

const PASSKEY_REJECTED = 'That passkey could not be created. Try again, or use another authenticator.';

export interface AddPasskeyRequest {
  policy: PasskeyPolicy;
  /** What `takeEnrollmentChallenge` returned. */
  challenge: StoredChallenge | undefined;
  /** The registration response as the request carried it. */
  response: unknown;
  name?: string;
  user: { id: string; webauthnUserId: string };
  poolId: string;
  authentication: PoolConfig['authentication'];
  audit: AuditTrail;
  log: Logger;
  /** Why the passkey is added, as the audit trail says it: `self_service`, `enrollment_link`. */
  reason: string;
}

export interface AddPasskeyDeps {
  recoveryCodes: Pick<RecoveryCodeRepository, 'replace' | 'countUnused'>;
  /** The key recovery codes are hashed with (the login flow's). */
  recoveryCodeKey: Uint8Array;
}

/**
 * @param store Stores the verified credential for the user; may throw the storage's
 *   UniqueViolationError and LimitExceededError, or the caller's own refusal.
 * @throws {PosternError} passkey_rejected for any refused ceremony or a registered
 *   credential; passkey_limit; passkey_pool_full.
 */
export async function addPasskey(
  deps: AddPasskeyDeps,
  request: AddPasskeyRequest,
  store: (passkey: Enrollment['passkey']) => Promise<Passkey>,
): Promise<{ passkey: Passkey; recoveryCodes?: string[] }> {
  const { policy, user, audit, log } = request;
  const fail = (credentialId: string | undefined, detail: Record<string, unknown>) =>
    audit.record({
      event: 'passkey_registration',
      outcome: 'failure',
      userId: user.id,
      credentialId,
      detail,
    });
  const refuse = (error: PasskeyRefused): never => {
    const { code, reason } = error;
    log.warn({ code, reason, credential: error.credentialId }, 'passkey registration refused');
    fail(error.credentialId, { method: 'passkey', code, reason });
    throw errorOf('passkey_rejected', { description: PASSKEY_REJECTED, detail: reason });
  };

  let enrollment: Enrollment;
  try {
    enrollment = await finishPasskeyEnrollment({ policy, challenge: request.challenge }, request.response, {
      ...(request.name === undefined ? {} : { name: request.name }),
      userHandle: user.webauthnUserId,
    });
  } catch (error) {
    if (error instanceof PasskeyRefused) return refuse(error);
    throw error;
  }

  const { credentialId } = enrollment.passkey;
  let passkey: Passkey;
  try {
    passkey = await store(enrollment.passkey);
  } catch (error) {
    if (error instanceof LimitExceededError && error.scope === 'per_pool') {
      log.warn({ maxPerPool: error.limit }, 'passkey registration refused: the pool is full');
      fail(
        credentialId,
        refusal('passkey_pool_full', `the pool stores ${error.limit} passkeys (max_per_pool)`),
      );
      throw passkeyPoolFull();
    }
    if (error instanceof LimitExceededError) {
      fail(credentialId, refusal('passkey_limit', `already ${error.limit} passkeys (max_per_user)`));
      throw passkeyLimit(error.limit);
    }
    if (error instanceof UniqueViolationError)
      return refuse(
        new PasskeyRefused('credential_registered', 'credential already registered', { credentialId }),
      );
    throw error;
  }
  audit.record({
    event: 'passkey_registration',
    outcome: 'success',
    userId: user.id,
    credentialId: passkey.credentialId,
    detail: { aaguid: passkey.aaguid, backup_eligible: passkey.backupEligible, reason: request.reason },
  });

  // The same rule as the login flow's first enrolment: ten codes, once.
  const recoveryCodes = await issueFirstRecoveryCodes(deps.recoveryCodes, deps.recoveryCodeKey, {
    poolId: request.poolId,
    userId: user.id,
    authentication: request.authentication,
  });
  if (recoveryCodes)
    audit.record({
      event: 'recovery_codes_issued',
      outcome: 'success',
      userId: user.id,
      detail: { count: recoveryCodes.length },
    });
  return { passkey, ...(recoveryCodes ? { recoveryCodes } : {}) };
}
