/**
 * createApp(deps): the Koa app, composed from injected parts and doing no
 * I/O of its own, so a test builds one in milliseconds (STYLE.md rule 10).
 *
 * Order matters: request id and logger first (everything logs with them),
 * then metrics, security headers and the error handler, then the routes:
 * health and metrics, static assets, Postern's own pool routes, and last the
 * dispatch of everything else under `/{pool}/` to that pool's oidc-provider.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import Koa from 'koa';
import { addAdminRoutes } from './admin/admin-routes.ts';
import type { AdminService } from './admin/admin-service.ts';
import type { Config, PoolConfig } from './config/types.ts';
import { addDemoAppRoutes, demoAppIsConfigured } from './demo/demo-app.ts';
import type { EnrollmentFlow } from './enrollment/enrollment-flow.ts';
import { addEnrollmentRoutes } from './enrollment/enrollment-routes.ts';
import { notFound } from './errors.ts';
import { appLinkOf } from './http/app-link.ts';
import { errorHandler } from './http/error-handler.ts';
import { addHealthRoutes } from './http/health-routes.ts';
import { answerWrongMethods } from './http/method-not-allowed.ts';
import { createMetrics, type Metrics, measureRequests } from './http/metrics.ts';
import { dispatchToProviders } from './http/pool-dispatch.ts';
import { createErrorPage } from './http/provider-pages.ts';
import type { Render } from './http/render.ts';
import { type RequestState, requestContext } from './http/request-context.ts';
import { logRequests } from './http/request-log.ts';
import { setNoStore, setSecurityHeaders } from './http/security-headers.ts';
import { staticAssets } from './http/static-assets.ts';
import { addInteractionRoutes } from './interactions/interaction-routes.ts';
import type { LoginService } from './interactions/login-service.ts';
import type { Logger } from './logging/create-logger.ts';
import { KEY_REFRESH_SECONDS } from './oidc/signing-keys.ts';
import type { PoolRegistry } from './pools/pool-registry.ts';
import { addAccountPageRoute } from './selfservice/account-page.ts';
import type { SelfService } from './selfservice/self-service.ts';
import { addSelfServiceRoutes } from './selfservice/self-service-routes.ts';
import type { DurableStore, EphemeralStore } from './storage/types.ts';

export interface AppDeps {
  config: Config;
  registry: PoolRegistry;
  durable: DurableStore;
  ephemeral: EphemeralStore;
  logger: Logger;
  render: Render;
  login: LoginService;
  /** Keys for Postern's own signed cookies (the demo app's). */
  cookieKeys: string[];
  /** (Optional) Defaults to a fresh registry without process metrics. */
  metrics?: Metrics;
  /** (Optional) The use cases behind `/{pool}/api/self/…`. Defaults to none: the API is not mounted. */
  selfService?: SelfService;
  /** (Optional) The use cases behind `/{pool}/api/admin/…`. Defaults to none: the API is not mounted. */
  admin?: AdminService;
  /** (Optional) The enrolment page's use cases (`/{pool}/enroll/{token}`). Defaults to none: not mounted. */
  enrollment?: EnrollmentFlow;
  /** (Optional) Whether the process is shutting down (/readyz then answers 503). Defaults to never. */
  shuttingDown?: () => boolean;
}

export type AppState = RequestState & { route?: string };

const ASSETS_DIR = fileURLToPath(new URL('../views/assets/', import.meta.url));
// @simplewebauthn/browser has no single-file ESM bundle: its esm/ folder is served as is.
const WEBAUTHN_BROWSER_DIR = dirname(fileURLToPath(import.meta.resolve('@simplewebauthn/browser')));

export function createApp(deps: AppDeps): Koa<AppState> {
  const { config, registry, durable, ephemeral, logger, render, login, metrics = createMetrics() } = deps;
  const https = config.server.public_url.startsWith('https:');

  // Behind a trusted proxy the client is the address that proxy appended (the
  // last X-Forwarded-For hop); what the client itself wrote before it is not.
  const app = new Koa<AppState>({ proxy: config.server.trust_proxy, maxIpsCount: 1, keys: deps.cookieKeys });
  app.silent = true; // each request's log line says why it failed (src/http/request-log.ts); Koa must not print

  const router = new Router<AppState>();
  addHealthRoutes(router, { durable, ephemeral, shuttingDown: deps.shuttingDown });
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.exposition();
  });
  if (demoAppIsConfigured(config)) addDemoAppRoutes(router, { config, render });
  addInteractionRoutes(router, {
    registry,
    service: login,
    publicUrl: config.server.public_url,
    renderPage: ({ pool, interaction }) =>
      render('interaction', {
        poolName: pool.display_name,
        base: `/${pool.id}/interaction/${interaction.uid}`,
        mode: pool.passkeys.mode,
        clientName: clientNameOf(pool, String(interaction.params.client_id)),
        app: appLinkOf(pool, String(interaction.params.client_id)),
      }),
    renderEmailLinkPage: (page) => render('email-link', page),
  });
  if (deps.selfService) {
    addSelfServiceRoutes(router, { registry, service: deps.selfService });
    addAccountPageRoute(router, { registry, render });
  }
  if (deps.admin) addAdminRoutes(router, { registry, service: deps.admin });
  if (deps.enrollment)
    addEnrollmentRoutes(router, {
      registry,
      flow: deps.enrollment,
      auditEvents: durable.auditEvents,
      publicUrl: config.server.public_url,
      renderPage: (page) => render('enroll', page),
    });
  answerWrongMethods(router, { isPool: (id) => registry.get(id) !== undefined });

  app.use(requestContext(logger, { trustProxy: config.server.trust_proxy }));
  app.use(async (ctx, next) => {
    // Every cookie Postern sets takes Secure from public_url, not from what Koa sees: behind a TLS
    // proxy without trust_proxy the request looks like http, and Koa would refuse a Secure cookie
    // (or default to none). This also makes Secure the default of every cookie (RFC 6265 §4.1.2.5).
    ctx.cookies.secure = https;
    await next();
  });
  app.use(logRequests());
  app.use(measureRequests(metrics));
  app.use(async (ctx, next) => {
    setSecurityHeaders(ctx.res, { https });
    const publicMaxAge = publicDocumentMaxAge(ctx.path);
    if (publicMaxAge !== undefined) ctx.res.setHeader('Cache-Control', `public, max-age=${publicMaxAge}`);
    else if (/^\/[a-z0-9-]+\//.test(ctx.path) && !ctx.path.startsWith('/assets/')) setNoStore(ctx.res);
    await next();
  });
  app.use(errorHandler(createErrorPage(render, config.pools)));
  app.use(async (ctx, next) => {
    await next();
    if (ctx._matchedRoute) ctx.state.route = String(ctx._matchedRoute);
  });
  app.use(router.routes());
  app.use(staticAssets({ '/assets/': ASSETS_DIR, '/assets/vendor/simplewebauthn/': WEBAUTHN_BROWSER_DIR }));
  app.use(
    dispatchToProviders(registry, {
      publicUrl: config.server.public_url,
      trustProxy: config.server.trust_proxy,
      ephemeral,
    }),
  );
  // Nothing above answered: the house 404, as a page or JSON (the error handler renders it).
  app.use(() => {
    throw notFound('There is no such page.');
  });
  return app;
}

/**
 * A pool's discovery document and JWKS are public and may be cached briefly;
 * everything else under a pool is never cached. The JWKS for less than a
 * rotated key's activation delay, so a cached copy has the key before it signs.
 */
function publicDocumentMaxAge(path: string): number | undefined {
  if (/^\/[a-z0-9-]+\/\.well-known\/(openid-configuration|oauth-authorization-server)$/.test(path))
    return 300;
  if (/^\/[a-z0-9-]+\/jwks$/.test(path)) return KEY_REFRESH_SECONDS;
  return undefined;
}

function clientNameOf(pool: PoolConfig, clientId: string): string {
  const client = pool.clients.find((candidate) => candidate.client_id === clientId);
  return client?.client_name ?? clientId;
}
