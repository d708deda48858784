/**
 * The admin use cases behind `/{pool}/api/admin/…` (CONTRACT.md, "Self-service
 * and admin APIs"): operators manage a pool's users, their passkeys and the
 * pool's organizations with a machine client's client-credentials token.
 * One module per resource,
 * composed here over one context; what they share is in ./admin-scope.ts.
 * The routes (./admin-routes.ts) authenticate the token, open the request's
 * scope (`scopeFor`) and flush its audit trail when the request ends.
 */
import { createAuditTrail } from '../accounts/audit-trail.ts';
import { createLimits } from '../accounts/limits.ts';
import type { EnrollmentLinks } from '../enrollment/enrollment-links.ts';
import { createOrganizationService } from '../organizations/organization-service.ts';
import type { DurableStore, EphemeralStore } from '../storage/types.ts';
import { adminEnrollment } from './admin-enrollment.ts';
import { adminPasskeys } from './admin-passkeys.ts';
import type { AdminContext, AdminRequest, AdminScope } from './admin-scope.ts';
import { adminTotp } from './admin-totp.ts';
import { adminUsers } from './admin-users.ts';

export type { AdminRequest, AdminScope } from './admin-scope.ts';

export interface AdminServiceDeps {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  /** Issues and mails enrolment links. */
  links: EnrollmentLinks;
}

export function createAdminService({ durable, ephemeral, links }: AdminServiceDeps) {
  const context: AdminContext = { durable, ephemeral, limits: createLimits(ephemeral), links };

  return {
    /** The scope of one authenticated request: every event it records names the acting client. */
    scopeFor(request: AdminRequest): AdminScope {
      const audit = createAuditTrail(durable.auditEvents, {
        poolId: request.pool.id,
        ip: request.ip,
        userAgent: request.userAgent,
        detail: { via: 'admin', client_id: request.clientId },
      });
      return { ...request, audit };
    },
    limits: context.limits,
    ...adminUsers(context),
    ...adminPasskeys(context),
    ...adminEnrollment(context),
    ...adminTotp(context),
    /** Organizations, through the service `postern orgs` shares (./admin-organizations.ts has the routes). */
    organizations: createOrganizationService({ durable, ephemeral }),
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
