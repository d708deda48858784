/**
 * `/healthz`: the process answers. `/readyz`: it can serve logins, i.e. the
 * database and Redis both answer within a second; a 503 names the one that
 * does not, so a load balancer stops sending traffic until it is back. From
 * SIGTERM on it answers 503 `shutting_down`, for the load balancer to stop
 * sending here before the listener closes (server.shutdown_delay).
 */
import type Router from '@koa/router';
import type { DurableStore, EphemeralStore } from '../storage/types.ts';

const PROBE_TIMEOUT_MS = 1000;

/**
 * @param deps.shuttingDown (Optional) Whether the process is shutting down. Defaults to never.
 */
export function addHealthRoutes(
  router: Router,
  {
    durable,
    ephemeral,
    shuttingDown,
  }: {
    durable: Pick<DurableStore, 'ping'>;
    ephemeral: Pick<EphemeralStore, 'ping'>;
    shuttingDown?: () => boolean;
  },
): void {
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    if (shuttingDown?.()) {
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 503;
      ctx.body = { status: 'shutting_down' };
      return;
    }
    const [database, redis] = await Promise.all([probe(() => durable.ping()), probe(() => ephemeral.ping())]);
    const unavailable = [...(database ? [] : ['database']), ...(redis ? [] : ['redis'])];
    ctx.set('Cache-Control', 'no-store');
    ctx.status = unavailable.length === 0 ? 200 : 503;
    ctx.body = unavailable.length === 0 ? { status: 'ready' } : { status: 'unavailable', unavailable };
  });
}

async function probe(ping: () => Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      ping().then(
        () => true,
        () => false,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
