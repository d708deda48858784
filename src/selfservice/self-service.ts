/**
 * The self-service use cases behind `/{pool}/api/self/…` (CONTRACT.md,
 * "Self-service and admin APIs"): a signed-in user reads their account, lists,
 * adds, renames and removes their passkeys, sets or changes their password,
 * and replaces their recovery codes. One module per resource, composed here
 * over one context; the guards and the rules every call keeps are in
 * ./self-service-scope.ts. The routes in ./self-service-routes.ts
 * authenticate the bearer token, open the request's scope (`scopeFor`) and
 * flush its audit trail when the request ends, whatever its outcome.
 */
import { createAuditTrail } from '../accounts/audit-trail.ts';
import { createLimits } from '../accounts/limits.ts';
import { deriveKey } from '../secrets/derive-key.ts';
import { totpSecretBox } from '../secrets/totp-box.ts';
import type { DurableStore, EphemeralStore } from '../storage/types.ts';
import { accountSummary } from './account-summary.ts';
import { selfPasskeys } from './self-passkeys.ts';
import { selfPassword } from './self-password.ts';
import { selfRecoveryCodes } from './self-recovery-codes.ts';
import type { SelfServiceContext, SelfServiceRequest, SelfServiceScope } from './self-service-scope.ts';
import { selfTotp } from './self-totp.ts';

export type { AccountSummary } from './account-summary.ts';
export type { SelfServiceRequest, SelfServiceScope, SignedOutView } from './self-service-scope.ts';

export interface SelfServiceDeps {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  /** The operator secret; the recovery-code key derives from it, as in the login flow. */
  secret: string;
  /** (Optional) Seconds since the epoch. Defaults to the system clock. */
  now?: () => number;
}

export function createSelfService(deps: SelfServiceDeps) {
  const { durable, ephemeral } = deps;
  const context: SelfServiceContext = {
    durable,
    ephemeral,
    limits: createLimits(ephemeral),
    recoveryCodeKey: deriveKey(deps.secret, 'recovery-codes'),
    totpBox: totpSecretBox(deps.secret),
    now: deps.now ?? (() => Math.floor(Date.now() / 1000)),
  };

  return {
    /**
     * The scope of one authenticated request: every event it records carries
     * the user, client, address and user agent. The caller flushes
     * `scope.audit` when the request ends, refused or not.
     */
    scopeFor(request: SelfServiceRequest): SelfServiceScope {
      const audit = createAuditTrail(durable.auditEvents, {
        poolId: request.pool.id,
        userId: request.accountId,
        ip: request.ip,
        userAgent: request.userAgent,
        detail: { via: 'self_service', client_id: request.clientId },
      });
      return { ...request, audit };
    },
    ...accountSummary(context),
    ...selfPasskeys(context),
    ...selfPassword(context),
    ...selfRecoveryCodes(context),
    ...selfTotp(context),
  };
}

export type SelfService = ReturnType<typeof createSelfService>;
