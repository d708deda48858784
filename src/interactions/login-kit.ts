/**
 * What every interaction call of every request shares: the stores, the
 * mailer, keys derived from the operator secret, the rate limits, each
 * pool's passkey policy (src/accounts/), and the clock. Per-request work
 * is the LoginContext's (./login-context.ts).
 */
import { createLimits } from '../accounts/limits.ts';
import { policyOf } from '../accounts/passkey-policies.ts';
import type { Mailer } from '../email/mailer.ts';
import type { Logger } from '../logging/create-logger.ts';
import { deriveKey } from '../secrets/derive-key.ts';
import { totpSecretBox } from '../secrets/totp-box.ts';
import type { DurableStore, EphemeralStore } from '../storage/types.ts';
import type { LoginMetrics } from './login-metrics.ts';

export interface LoginServiceDeps {
  durable: DurableStore;
  ephemeral: EphemeralStore;
  mailer: Mailer;
  logger: Logger;
  /** The operator secret; keys for decoy credentials and recovery codes derive from it. */
  secret: string;
  /** The server's public URL, for links in mail. */
  publicUrl: string;
  metrics: LoginMetrics;
  /** (Optional) Milliseconds since the epoch. Defaults to the system clock. */
  clock?: () => number;
}

export function createLoginKit(deps: LoginServiceDeps) {
  return {
    deps,
    clock: deps.clock ?? Date.now,
    keys: {
      decoy: deriveKey(deps.secret, 'decoy-credentials'),
      recoveryCodes: deriveKey(deps.secret, 'recovery-codes'),
      knownDevices: deriveKey(deps.secret, 'known-devices'),
      totp: totpSecretBox(deps.secret),
    },
    limits: createLimits(deps.ephemeral),
    policyOf,
  };
}

export type LoginKit = ReturnType<typeof createLoginKit>;
