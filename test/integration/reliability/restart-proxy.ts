/**
 * A loopback reverse proxy for the rolling-restart test, as strict as a real
 * one must be with non-idempotent requests (RFC 9110 §9.2.2): it tries the
 * backends round-robin, and only a connection that could not be made
 * (refused, or reset before it was up: the request was not written) goes on
 * to the next one. A request that reached
 * a backend is never sent again, so any reset, timeout or 5xx there reaches
 * the client as a 502 (or that 5xx) and fails its sign-in.
 *
 * Like haproxy's `option httpchk`, it asks each backend's /readyz every
 * CHECK_INTERVAL_MS and sends to those answering 200 first; one that does not
 * (Postern's says 503 from SIGTERM on, for server.shutdown_delay, before it
 * stops listening) is tried only when every ready one refused.
 *
 * Each request gets a backend connection of its own (`Connection: close`
 * upstream, as nginx proxies without `keepalive`): a connection the backend
 * closed while idle would be indistinguishable from one that took the
 * request. The body is read whole first (sign-in bodies are small), so it can
 * be sent to the next backend after a refusal. X-Forwarded-For gets the
 * client's address appended (Postern runs with trust_proxy, so its
 * per-address limits see the clients, not the proxy); Host is passed as it
 * came, since the proxy's origin is the public one.
 */
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RestartProxy {
  port: number;
  /** Per backend port: requests it answered, and connections it refused (or reset while connecting). */
  answered: Map<number, number>;
  refused: Map<number, number>;
  /** Requests the proxy could not get an answer for (every backend refused, or one failed after taking it). */
  failures: string[];
  close(): Promise<void>;
}

const BACKEND_TIMEOUT_MS = 15_000;
const CHECK_INTERVAL_MS = 100;

/** Starts the proxy on a free loopback port in front of `backends` (their ports on 127.0.0.1). */
export async function startRestartProxy(backends: number[]): Promise<RestartProxy> {
  const answered = new Map(backends.map((port) => [port, 0]));
  const refused = new Map(backends.map((port) => [port, 0]));
  const failures: string[] = [];
  let next = 0;
  // Until its first check a backend counts as ready: a refusal still sends the request on.
  const ready = new Map(backends.map((port) => [port, true]));
  const check = async () => {
    await Promise.all(backends.map(async (port) => ready.set(port, await isReady(port))));
  };
  let checking = check();
  const checks = setInterval(() => {
    checking = checking.then(check);
  }, CHECK_INTERVAL_MS);

  const forward = async (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const headers: NodeJS.Dict<string | string[]> = { ...incoming.headers, connection: 'close' };
    const forwardedFor = incoming.headers['x-forwarded-for'];
    const client = incoming.socket.remoteAddress ?? '';
    headers['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${client}` : client;
    const first = next++ % backends.length;
    const turn = [...backends.slice(first), ...backends.slice(0, first)];
    const order = [...turn.filter((port) => ready.get(port)), ...turn.filter((port) => !ready.get(port))];
    for (const port of order) {
      const outcome = await send(port, incoming, headers, body, outgoing);
      if (outcome === 'refused') {
        refused.set(port, (refused.get(port) ?? 0) + 1);
        continue;
      }
      if (typeof outcome === 'number') {
        answered.set(port, (answered.get(port) ?? 0) + 1);
        if (outcome >= 500) failures.push(`${incoming.method} ${incoming.url} at :${port}: ${outcome}`);
        return;
      }
      failures.push(`${incoming.method} ${incoming.url} at :${port}: ${outcome.failed}`);
      // Part of the answer may already be on its way to the client: then cut it off, as the backend did.
      if (outgoing.headersSent) outgoing.destroy();
      else outgoing.writeHead(502, { 'content-type': 'text/plain' }).end(`backend failed: ${outcome.failed}`);
      return;
    }
    failures.push(`${incoming.method} ${incoming.url}: every backend refused`);
    outgoing.writeHead(502, { 'content-type': 'text/plain' }).end('every backend refused the connection');
  };

  const server: Server = createServer((incoming, outgoing) => {
    forward(incoming, outgoing).catch((error: unknown) => {
      failures.push(`${incoming.method} ${incoming.url}: ${String(error)}`);
      outgoing.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    answered,
    refused,
    failures,
    close: async () => {
      clearInterval(checks);
      await checking;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Whether GET /readyz on a backend answers 200 within a second. */
async function isReady(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

/**
 * Sends one request to one backend and relays its answer. Resolves with
 * `refused` when the connection was refused (the only case worth another
 * backend), the status once the whole answer was relayed, or what went wrong.
 */
function send(
  port: number,
  incoming: IncomingMessage,
  headers: NodeJS.Dict<string | string[]>,
  body: Buffer,
  outgoing: ServerResponse,
): Promise<'refused' | number | { failed: string }> {
  return new Promise((resolve) => {
    const upstream = request(
      { host: '127.0.0.1', port, method: incoming.method, path: incoming.url, headers, agent: false },
      (answer) => {
        const relayed = Object.entries(answer.headers).filter(([name]) => !HOP_BY_HOP.has(name));
        outgoing.writeHead(answer.statusCode ?? 502, Object.fromEntries(relayed));
        answer.pipe(outgoing);
        answer.once('error', (error) => resolve({ failed: `answer cut off: ${error.message}` }));
        answer.once('aborted', () => resolve({ failed: 'answer cut off' }));
        answer.once('end', () => resolve(answer.statusCode ?? 502));
      },
    );
    upstream.setTimeout(BACKEND_TIMEOUT_MS, () => upstream.destroy(new Error('backend timed out')));
    // An error in `connect` (refused, or reset before the connection was up) means nothing was
    // written: node:http sends a request only once its connection is established.
    upstream.once('error', (error: NodeJS.ErrnoException) =>
      resolve(error.syscall === 'connect' ? 'refused' : { failed: `${error.code ?? ''} ${error.message}` }),
    );
    upstream.end(body);
  });
}
