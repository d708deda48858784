/**
 * The hosted account page, `/{pool}/account`: a static shell whose script
 * (views/assets/account.js) signs the user in through the pool's own
 * `postern-account` client (authorization code + PKCE, from the browser, like
 * any public client) and then manages passkeys, password and recovery codes
 * through the self-service API with the access token it got.
 */
import type Router from '@koa/router';
import { ACCOUNT_CLIENT_ID } from '../config/account-client.ts';
import { notFound } from '../errors.ts';
import type { Render } from '../http/render.ts';
import type { PoolRegistry } from '../pools/pool-registry.ts';

export function addAccountPageRoute(
  router: Router,
  { registry, render }: { registry: Pick<PoolRegistry, 'get'>; render: Render },
): void {
  router.get('/:pool/account', (ctx) => {
    const runtime = registry.get(ctx.params.pool ?? '');
    if (!runtime) throw notFound('There is no such service.');
    const { config } = runtime;
    ctx.type = 'html';
    ctx.body = render('account', {
      poolName: config.display_name,
      issuer: config.issuer,
      clientId: ACCOUNT_CLIENT_ID,
    });
  });
}
