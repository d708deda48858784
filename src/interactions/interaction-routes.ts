/**
 * The interaction API and the hosted page (CONTRACT.md, "Interaction API").
 * Routes are thin: guard the body (zod; a ceremony's verification, once its
 * challenge is taken), bind the call to its interaction
 * (oidc-provider's path-scoped interaction cookie, and the uid in the URL must
 * match it), call one use case, answer JSON. JSON POSTs must be same-origin
 * `application/json`, which a cross-site form cannot send.
 */

import type Router from '@koa/router';
import type { Context } from 'koa';
import { errors } from 'oidc-provider';
import { PosternError } from '../errors.ts';
import { parseBody, readJsonBody } from '../http/json-body.ts';
import { sameOriginJson } from '../http/same-origin-json.ts';
import { createInteractionPort } from '../oidc/interaction-port.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';
import { KNOWN_DEVICE_COOKIE, KNOWN_DEVICE_MAX_AGE_SECONDS } from './known-devices.ts';
import type { LoginScope, LoginService } from './login-service.ts';

export interface InteractionRoutesOptions {
  registry: Pick<PoolRegistry, 'get'>;
  service: LoginService;
  publicUrl: string;
  /** Renders the hosted page for an interaction. */
  renderPage(scope: LoginScope): string;
  /** Renders the page an email link opens (it reads the interaction itself, from the browser). */
  renderEmailLinkPage(page: { poolName: string; base: string }): string;
}

const expired = (detail: string) =>
  new PosternError(
    400,
    'interaction_expired',
    'This sign-in has expired or was opened in another browser. Go back to the app and start again.',
    { detail },
  );

export function addInteractionRoutes(
  router: Router,
  { registry, service, publicUrl, renderPage, renderEmailLinkPage }: InteractionRoutesOptions,
) {
  const base = '/:pool/interaction/:uid';
  // From public_url, not the request: behind a TLS proxy Koa may see http (app.ts lets Koa set it).
  const secureCookies = publicUrl.startsWith('https:');

  /** The request's scope; `withProgress`: its progress read alongside the interaction (API calls, not the page). */
  async function scopeOf(ctx: Context, { withProgress = false } = {}): Promise<LoginScope> {
    const runtime = registry.get(ctx.params.pool ?? '');
    if (!runtime) throw new PosternError(404, 'not_found', 'There is no such sign-in page.');
    const storedProgress = withProgress
      ? service.prefetchProgress(runtime.config.id, ctx.params.uid ?? '')
      : undefined;
    let interaction: Awaited<ReturnType<typeof runtime.provider.interactionDetails>>;
    try {
      interaction = await runtime.provider.interactionDetails(ctx.req, ctx.res);
    } catch (error) {
      if (error instanceof errors.SessionNotFound) throw expired(error.error_description ?? 'no interaction');
      throw error;
    }
    if (interaction.uid !== ctx.params.uid)
      throw expired('interaction cookie belongs to another interaction');
    const clientId = String(interaction.params.client_id);
    const client = runtime.config.clients.find((candidate) => candidate.client_id === clientId);
    return {
      pool: runtime.config,
      interaction,
      oidc: createInteractionPort(runtime.provider, interaction, { allowedScope: client?.scope ?? '' }),
      ip: ctx.ip,
      userAgent: ctx.get('user-agent').slice(0, 512),
      log: ctx.state.log,
      ...(storedProgress ? { storedProgress } : {}),
      knownDevice: {
        read: () => ctx.cookies.get(KNOWN_DEVICE_COOKIE),
        write: (value) =>
          ctx.cookies.set(KNOWN_DEVICE_COOKIE, value, {
            path: `/${runtime.config.id}/`,
            httpOnly: true,
            sameSite: 'lax',
            secure: secureCookies,
            maxAge: KNOWN_DEVICE_MAX_AGE_SECONDS * 1000,
            overwrite: true,
          }),
      },
    };
  }

  const requireJson = sameOriginJson(publicUrl);

  router.get(base, async (ctx) => {
    const scope = await scopeOf(ctx);
    ctx.type = 'html';
    ctx.body = renderPage(scope);
  });
  // The email link's page: no interaction lookup here. Its script asks `state` with
  // this browser's cookies, enters the code from the link's fragment where the
  // interaction is this browser's, and otherwise only shows the code.
  router.get(`${base}/email-link`, async (ctx) => {
    const runtime = registry.get(ctx.params.pool ?? '');
    if (!runtime) throw new PosternError(404, 'not_found', 'There is no such sign-in page.');
    ctx.type = 'html';
    ctx.body = renderEmailLinkPage({
      poolName: runtime.config.display_name,
      base: `/${runtime.config.id}/interaction/${encodeURIComponent(ctx.params.uid ?? '')}`,
    });
  });
  router.get(`${base}/state`, async (ctx) => {
    ctx.body = await service.state(await scopeOf(ctx, { withProgress: true }));
  });
  // A ceremony's verification reads its body once it has taken its challenge: a body refused
  // for its shape (or its text) spends the challenge like any other refused verification.
  const requireJsonHeaders = sameOriginJson(publicUrl, { readBody: false });
  for (const call of service.calls) {
    if (call.bodyAfterChallenge) {
      router.post(`${base}/${call.path}`, requireJsonHeaders, async (ctx) => {
        const scope = await scopeOf(ctx, { withProgress: true });
        ctx.body = await call.run(scope, async () => parseBody(call.body, await readJsonBody(ctx)));
      });
      continue;
    }
    router.post(`${base}/${call.path}`, requireJson, async (ctx) => {
      const body = parseBody(call.body, (ctx.request as { body?: unknown }).body);
      ctx.body = await call.run(await scopeOf(ctx, { withProgress: true }), body);
    });
  }
}
