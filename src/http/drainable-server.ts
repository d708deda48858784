/**
 * An HTTP server that drains instead of dropping: `drain()` stops taking new
 * connections and resolves once every request already sent to it has been
 * answered and every connection has closed (`postern serve` on SIGTERM).
 *
 * Why not `http.Server#close()`: it leaves a connection with a request in
 * progress open after the answer (the answer even says `keep-alive`, so the
 * client sends its next request there and the server serves it, until the
 * forced exit cuts one off mid-request), and it closes at once every
 * connection with no request in progress, including one accepted a moment ago
 * whose request is still in the kernel's buffer, unread.
 *
 * Draining, in order:
 * 1. At once: every answer not yet begun says `Connection: close`
 *    (RFC 9112 §9.6), so its connection ends with it.
 * 2. For `delayMs` (server.shutdown_delay) it goes on serving, new
 *    connections included, while the caller's /readyz says it is shutting
 *    down, so that a load balancer checking it stops sending here first:
 *    closing a listening socket resets the connections queued in it, whose
 *    requests were already written, and a proxy cannot tell those from
 *    requests a backend took and lost, so it must not retry them.
 * 3. The listening socket closes just after the next connection is accepted
 *    (the kernel's accept queue is then as empty as it gets; closing the
 *    socket resets whatever is queued there), or after the next poll phase if
 *    none comes. From then on a new connection is refused, and a proxy sends
 *    it elsewhere.
 * 4. After the next poll phase (by then whatever was already in a socket's
 *    buffer when draining began has been read), an idle connection that has
 *    been answered before is closed. One that has sent nothing yet was just
 *    opened, so its request is on its way: it gets FIRST_REQUEST_MS for it.
 */
import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a connection that has sent nothing yet may take to send its first request once draining began. */
const FIRST_REQUEST_MS = 1000;

export interface DrainableServer {
  server: Server;
  /**
   * Stops accepting, after `delayMs` (Optional, defaults to 0); resolves when
   * every connection has closed. A second call returns the first one's promise.
   */
  drain(options?: { delayMs?: number }): Promise<void>;
  /** Destroys every connection, whatever it is doing (the forced end of a shutdown). */
  destroyConnections(): void;
}

interface ConnectionState {
  /** Requests read and not yet answered. */
  active: number;
  answered: number;
}

/** Runs `callback` once the event loop has been through its next poll phase. */
function afterNextPoll(callback: () => void): void {
  // An immediate queued while the check phase runs waits for the next iteration's check phase.
  setImmediate(() => setImmediate(callback));
}

export function createDrainableServer(listener: RequestListener): DrainableServer {
  const connections = new Map<Socket, ConnectionState>();
  const answering = new Set<ServerResponse>();
  let draining: Promise<void> | undefined;
  /** Set once the listener is to close (after the delay). */
  let closing = false;
  let stopListening: (() => void) | undefined;

  const closeIfIdle = (socket: Socket, state: ConnectionState) => {
    if (state.active > 0) return;
    if (state.answered > 0) {
      socket.end();
      return;
    }
    setTimeout(() => {
      if (state.active === 0 && state.answered === 0) socket.destroy();
    }, FIRST_REQUEST_MS).unref();
  };

  const server = createServer((req, res) => {
    const socket = req.socket;
    const state = connections.get(socket);
    if (state) state.active += 1;
    answering.add(res);
    if (draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      answering.delete(res);
      if (!state) return;
      state.active -= 1;
      state.answered += 1;
      // An answer begun before draining said keep-alive: end the connection here instead.
      if (closing) closeIfIdle(socket, state);
    });
    listener(req, res);
  });

  // First among the listeners: the sooner the listener closes after an accept, the fewer connections queue meanwhile.
  server.prependListener('connection', (socket: Socket) => {
    const state: ConnectionState = { active: 0, answered: 0 };
    connections.set(socket, state);
    socket.once('close', () => connections.delete(socket));
    if (closing) {
      stopListening?.();
      closeIfIdle(socket, state);
    }
  });

  return {
    server,
    drain({ delayMs = 0 } = {}) {
      draining ??= (async () => {
        for (const res of answering) if (!res.headersSent) res.setHeader('connection', 'close');
        if (delayMs > 0) await sleep(delayMs);
        await stopAccepting();
      })();
      return draining;
    },
    destroyConnections() {
      for (const socket of connections.keys()) socket.destroy();
    },
  };

  function stopAccepting(): Promise<void> {
    return new Promise<void>((resolve) => {
      closing = true;
      let stopped = false;
      stopListening = () => {
        if (stopped) return;
        stopped = true;
        // net.Server's close: stop listening, call back once the last connection has closed.
        NetServer.prototype.close.call(server, () => resolve());
      };
      afterNextPoll(() => {
        stopListening?.();
        for (const [socket, state] of connections) closeIfIdle(socket, state);
      });
    });
  }
}
