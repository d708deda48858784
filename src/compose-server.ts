/**
 * composeServer(deps): every pool's provider, the login and self-service
 * use cases and the Koa app, over stores the caller opened. It listens on
 * nothing and opens nothing, so a test or the benchmark can hand it its own
 * stores (wrapped to count round trips, say) and a clock; `postern serve`
 * (src/cli/serve.ts) opens the real ones and listens.
 */
import type Koa from 'koa';
import { createLimits } from './accounts/limits.ts';
import { createAdminService } from './admin/admin-service.ts';
import { type AppState, createApp } from './app.ts';
import type { Config } from './config/types.ts';
import { createMailer, type Mailer } from './email/mailer.ts';
import { createEnrollmentFlow } from './enrollment/enrollment-flow.ts';
import { createEnrollmentLinks } from './enrollment/enrollment-links.ts';
import { toPosternError } from './http/error-handler.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { createProviderPages } from './http/provider-pages.ts';
import { createRenderer } from './http/render.ts';
import { recordFailure } from './http/request-context.ts';
import { createLoginMetrics } from './interactions/login-metrics.ts';
import { createLoginService } from './interactions/login-service.ts';
import type { Logger } from './logging/create-logger.ts';
import { openPoolRegistry, type PoolRegistry } from './pools/pool-registry.ts';
import { deriveKey } from './secrets/derive-key.ts';
import { createSelfService } from './selfservice/self-service.ts';
import type { DurableStore, EphemeralStore } from './storage/types.ts';

export interface ServerDeps {
  config: Config;
  durable: DurableStore;
  ephemeral: EphemeralStore;
  /** The operator secret (src/secrets/resolve-secret.ts). */
  secret: string;
  logger: Logger;
  /** (Optional) Defaults to a registry with process metrics. */
  metrics?: Metrics;
  /** (Optional) Defaults to SMTP from the server file, or the log. */
  mailer?: Mailer;
  /** (Optional) Milliseconds since the epoch, for the login flow. Defaults to the system clock. */
  clock?: () => number;
  /** (Optional) Seconds between signing key checks. Defaults to 30. */
  keyRefreshSeconds?: number;
  /** (Optional) Whether the process is shutting down (/readyz then answers 503). Defaults to never. */
  shuttingDown?: () => boolean;
}

export interface ComposedServer {
  app: Koa<AppState>;
  registry: PoolRegistry;
  mailer: Mailer;
  /** Stops the key refresh and the mailer; the stores are the caller's to close. */
  close(): void;
}

export async function composeServer(deps: ServerDeps): Promise<ComposedServer> {
  const { config, durable, ephemeral, secret, logger } = deps;
  const metrics = deps.metrics ?? createMetrics({ processMetrics: true });
  const render = createRenderer();
  const registry = await openPoolRegistry({
    config,
    durable,
    ephemeral,
    secret,
    pagesFor: createProviderPages(render, logger),
    // Logged with the request's one line (src/http/request-log.ts), by the code the client was told.
    onServerError: (req, error) =>
      recordFailure(req, { error: toPosternError(error).code, err: error }, logger),
    keyRefreshSeconds: deps.keyRefreshSeconds,
    onRefreshError: (poolId, error) =>
      logger.warn({ err: error, pool: poolId }, 'signing key refresh failed'),
  });
  const mailer =
    deps.mailer ??
    createMailer({ smtpUrl: config.server.email.smtp_url, from: config.server.email.from, logger });
  const login = createLoginService({
    durable,
    ephemeral,
    mailer,
    logger,
    secret,
    publicUrl: config.server.public_url,
    metrics: createLoginMetrics(metrics.registry),
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  const links = createEnrollmentLinks({
    durable,
    mailer,
    logger,
    publicUrl: config.server.public_url,
    mailDelivers: config.server.email.smtp_url !== undefined,
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  const app = createApp({
    config,
    registry,
    durable,
    ephemeral,
    logger,
    render,
    login,
    cookieKeys: [deriveKey(secret, 'cookies:postern').toString('base64url')],
    metrics,
    shuttingDown: deps.shuttingDown,
    selfService: createSelfService({
      durable,
      ephemeral,
      secret,
      ...(deps.clock ? { now: () => Math.floor(deps.clock!() / 1000) } : {}),
    }),
    admin: createAdminService({ durable, ephemeral, links }),
    enrollment: createEnrollmentFlow({
      durable,
      ephemeral,
      limits: createLimits(ephemeral),
      mailer,
      recoveryCodeKey: deriveKey(secret, 'recovery-codes'),
      clock: deps.clock ?? Date.now,
    }),
  });
  return {
    app,
    registry,
    mailer,
    close() {
      registry.close();
      mailer.close();
    },
  };
}
