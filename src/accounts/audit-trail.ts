/**
 * A request's audit trail: events are recorded as the request goes and
 * written together, in one statement, when it ends (`flush`, called by the
 * routes whether the request succeeded or was refused). Each event carries
 * where the request came from; a refusal is audited even though the request
 * then throws.
 */
import type { AuditEvent, AuditEventRepository } from '../storage/types.ts';

/** What every event of one request shares. */
export interface AuditSource {
  poolId: string;
  /** null where there is no request (the command line). */
  ip: string | null;
  userAgent: string | null;
  /** Detail every event carries, e.g. the client and interaction, or `via: 'self_service'`. */
  detail: Record<string, unknown>;
  /** (Optional) The user of every event that names none (a self-service token's subject). */
  userId?: string;
}

export interface AuditRecord {
  event: string;
  outcome: 'success' | 'failure';
  userId?: string | null;
  credentialId?: string | null;
  detail?: Record<string, unknown>;
}

export interface AuditTrail {
  record(entry: AuditRecord): void;
  /** Writes what was recorded since the last flush. */
  flush(): Promise<void>;
}

export function createAuditTrail(
  events: Pick<AuditEventRepository, 'appendMany'>,
  source: AuditSource,
): AuditTrail {
  let pending: AuditEvent[] = [];
  return {
    record({ event, outcome, userId, credentialId, detail }) {
      pending.push({
        poolId: source.poolId,
        event,
        outcome,
        userId: userId ?? source.userId ?? null,
        credentialId: credentialId ?? null,
        ip: source.ip,
        userAgent: source.userAgent,
        detail: { ...source.detail, ...detail },
      });
    },
    async flush() {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      await events.appendMany(batch);
    },
  };
}
