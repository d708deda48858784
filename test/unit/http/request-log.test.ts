/**
 * What the console shows per request (issue 8, item 19): one line at most,
 * whatever happened (a page, a refusal, a bug, a wrong method, an
 * oidc-provider server_error), and health checks, metrics and assets only at
 * debug. Read from the JSON a real logger writes, and from its pretty output.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import Koa from 'koa';
import { createApp } from '../../../src/app.ts';
import type { Config } from '../../../src/config/types.ts';
import { createRenderer } from '../../../src/http/render.ts';
import { recordFailure, requestContext } from '../../../src/http/request-context.ts';
import { logRequests } from '../../../src/http/request-log.ts';
import type { LoginService } from '../../../src/interactions/login-service.ts';
import { createLogger, type Logger } from '../../../src/logging/create-logger.ts';
import type { PoolRegistry } from '../../../src/pools/pool-registry.ts';
import type { DurableStore, EphemeralStore } from '../../../src/storage/types.ts';

/** A logger writing into `text`, as JSON or as the pretty console would. */
function capture(options: { level?: string; pretty?: boolean } = {}): { logger: Logger; text: () => string } {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    logger: createLogger({ level: 'debug', pretty: false, ...options, destination }),
    text: () => text,
  };
}

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown> & { level: number; msg: string });

const config = {
  server: { public_url: 'https://id.acme.example', trust_proxy: false },
  pools: [],
} as unknown as Config;

/** Pool `broken` has a bug: looking it up throws. */
const registry: PoolRegistry = {
  get: (id: string) => {
    if (id === 'broken') throw new Error('a bug in the registry');
    return undefined;
  },
  list: () => [],
  refreshKeys: async () => {},
  close: () => {},
};

async function listen(t: ExecutionContext, callback: ReturnType<Koa['callback']>): Promise<string> {
  const server = createServer(callback);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function serve(t: ExecutionContext, logger: Logger) {
  const app = createApp({
    config,
    registry,
    durable: { ping: async () => {} } as DurableStore,
    ephemeral: { ping: async () => {} } as EphemeralStore,
    logger,
    render: createRenderer(),
    login: {
      prefetchProgress: () => Promise.reject(new Error('no login in this test')),
      state: () => Promise.reject(new Error('no login in this test')),
      calls: [],
    } satisfies LoginService,
    cookieKeys: ['test-cookie-key'],
  });
  return listen(t, app.callback());
}

const LEVEL = { debug: 20, info: 30, error: 50 };

test('each request logs exactly one line, at the level its path and status call for', async (t) => {
  const { logger, text } = capture();
  const url = await serve(t, logger);
  const requests: Array<[string, string, { level: number; status: number; error?: string }]> = [
    ['GET', '/healthz', { level: LEVEL.debug, status: 200 }],
    ['GET', '/readyz', { level: LEVEL.debug, status: 200 }],
    ['GET', '/metrics', { level: LEVEL.debug, status: 200 }],
    ['GET', '/assets/postern.css', { level: LEVEL.debug, status: 200 }],
    ['GET', '/nowhere/interaction/abc', { level: LEVEL.info, status: 404, error: 'not_found' }],
    ['POST', '/healthz', { level: LEVEL.info, status: 405, error: 'method_not_allowed' }],
    ['GET', '/broken/interaction/abc', { level: LEVEL.error, status: 500, error: 'server_error' }],
  ];
  for (const [method, path, expected] of requests) {
    const response = await fetch(`${url}${path}`, { method, headers: { accept: 'application/json' } });
    await response.arrayBuffer();
    t.is(response.status, expected.status, path);
    const lines = jsonLines(text()).filter((line) => line.req_id === response.headers.get('x-request-id'));
    t.is(lines.length, 1, `${method} ${path}: ${JSON.stringify(lines)}`);
    t.like(lines[0], {
      ...expected,
      method,
      path,
      msg: `${method} ${path} ${expected.status} ${lines[0]?.ms}ms`,
    });
  }
  const bug = jsonLines(text()).find((line) => line.path === '/broken/interaction/abc');
  t.regex(
    String((bug?.err as { stack?: unknown } | undefined)?.stack),
    /a bug in the registry/,
    'a bug keeps its stack',
  );
});

test('an oidc-provider server_error is told on its request’s one line', async (t) => {
  const { logger, text } = capture();
  // As src/http/pool-dispatch.ts hands a request to oidc-provider: it answers on the raw response.
  const app = new Koa();
  app.use(requestContext(logger, { trustProxy: false }));
  app.use(logRequests());
  app.use(async (ctx) => {
    ctx.respond = false;
    recordFailure(ctx.req, { error: 'server_error', err: new Error('adapter exploded') }, logger);
    ctx.res.statusCode = 500;
    ctx.res.end('{"error":"server_error"}');
  });
  const url = await listen(t, app.callback());
  const response = await fetch(`${url}/acme/token`, { method: 'POST' });
  await response.arrayBuffer();
  const lines = jsonLines(text());
  t.is(lines.length, 1, JSON.stringify(lines));
  t.like(lines[0], { level: LEVEL.error, status: 500, error: 'server_error', path: '/acme/token' });
  t.regex(String((lines[0]?.err as { stack?: unknown } | undefined)?.stack), /adapter exploded/);
});

test('the pretty console shows one short line per request, and no health check at info', async (t) => {
  const { logger, text } = capture({ level: 'info', pretty: true });
  const url = await serve(t, logger);
  await (await fetch(`${url}/healthz`)).arrayBuffer();
  await (await fetch(`${url}/assets/postern.css`)).arrayBuffer();
  await (
    await fetch(`${url}/nowhere/interaction/abc`, { headers: { accept: 'application/json' } })
  ).arrayBuffer();
  const lines = text().split('\n').filter(Boolean);
  t.is(lines.length, 1, text());
  t.regex(
    lines[0] ?? '',
    /^\[[\d:.]+\] INFO: GET \/nowhere\/interaction\/abc 404 \d+ms \{"error":"not_found"\}$/,
  );
});
