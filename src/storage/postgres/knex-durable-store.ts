/**
 * Assembles a DurableStore from one knex instance. PostgreSQL and PGlite run
 * exactly this code (Kratos' `dsn: memory` idea: the embedded default executes
 * the same SQL as production); only open-durable-store.ts knows which is which.
 */
import type { Knex } from 'knex';
import { StoreUnavailableError } from '../errors.ts';
import type { DurableStore, OidcModelStore } from '../types.ts';
import { createAuditEventRepository } from './audit-event-repository.ts';
import { changedRows } from './column-values.ts';
import { createEnrollmentLinkRepository } from './enrollment-link-repository.ts';
import { type MigrateOptions, migrate, pendingMigrations } from './migrate.ts';
import { createOidcModelRepository } from './oidc-model-repository.ts';
import { createOrganizationRepository } from './organization-repository.ts';
import { createPasskeyRepository } from './passkey-repository.ts';
import { createRecoveryCodeRepository } from './recovery-code-repository.ts';
import { createRefreshRotation } from './refresh-rotation.ts';
import { createSigningKeyRepository } from './signing-key-repository.ts';
import { createTotpRepository } from './totp-repository.ts';
import { translateError } from './translate-error.ts';
import { createUserRepository } from './user-repository.ts';

/** Most expired oidc rows one sweep statement deletes. */
const SWEEP_BATCH = 2_000;

export interface KnexDurableStoreOptions extends MigrateOptions {
  kind: DurableStore['kind'];
  /** (Optional) Runs after knex is destroyed, e.g. to close an embedded database. */
  onClose?: () => Promise<void>;
}

/**
 * Wraps `db` as a DurableStore; closing the store destroys `db`.
 */
export function createKnexDurableStore(db: Knex, options: KnexDurableStoreOptions): DurableStore {
  const { kind, openMigrationDb, onClose } = options;
  const oidcModels = new Map<string, OidcModelStore>();
  const rotateRefreshToken = createRefreshRotation(db);
  let migrationQueue: Promise<unknown> = Promise.resolve();

  const translated = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw translateError(error);
    }
  };

  return {
    kind,
    users: createUserRepository(db),
    passkeys: createPasskeyRepository(db),
    recoveryCodes: createRecoveryCodeRepository(db),
    totp: createTotpRepository(db),
    organizations: createOrganizationRepository(db),
    enrollmentLinks: createEnrollmentLinkRepository(db),
    signingKeys: createSigningKeyRepository(db),
    auditEvents: createAuditEventRepository(db),

    oidcModels(poolId) {
      let models = oidcModels.get(poolId);
      if (!models) {
        models = createOidcModelRepository(db, poolId);
        oidcModels.set(poolId, models);
      }
      return models;
    },

    rotateRefreshToken(poolId, rotation) {
      return translated(() => rotateRefreshToken(poolId, rotation));
    },

    migrate() {
      // knex's lock table makes a concurrent second run fail rather than wait; the
      // advisory lock covers other processes, this queue covers this one (and PGlite).
      const run = migrationQueue.then(() =>
        translated(() => migrate(db, openMigrationDb ? { openMigrationDb } : {})),
      );
      migrationQueue = run.catch(() => {});
      return run;
    },

    pendingMigrations() {
      return translated(() => pendingMigrations(db));
    },

    sweepExpired(now = new Date()) {
      return translated(async () => {
        // In batches: each statement stays well within the serving query timeout,
        // however many rows expired while no process swept.
        let swept = 0;
        for (;;) {
          const batch = changedRows(
            await db('oidc_models')
              .whereIn(
                ['pool_id', 'model', 'id'],
                db('oidc_models')
                  .select('pool_id', 'model', 'id')
                  .where('expires_at', '<=', now)
                  .limit(SWEEP_BATCH),
              )
              .delete(),
          );
          swept += batch;
          if (batch < SWEEP_BATCH) break;
        }
        // The organization of a grant goes with the grant (no foreign key: see migration 0008).
        await db('grant_organizations')
          .whereNotExists(
            db('oidc_models')
              .where('oidc_models.model', 'Grant')
              .whereRaw('oidc_models.pool_id = grant_organizations.pool_id')
              .whereRaw('oidc_models.id = grant_organizations.grant_id'),
          )
          .delete();
        return swept;
      });
    },

    async ping() {
      try {
        await db.raw('select 1');
      } catch (error) {
        // Whatever the cause, a failed ping means "not serving": fail closed.
        throw new StoreUnavailableError('database', { cause: error });
      }
    },

    async close() {
      await db.destroy();
      await onClose?.();
    },
  };
}
