/**
 * A TCP proxy on the loopback between Postern and one of its stores, to make
 * the store slow or unreachable without touching it:
 *
 * - `pass`: bytes flow both ways at once.
 * - `delay`: every chunk, both ways, arrives `delayMs` late (in order), as over
 *   a congested or far-away link.
 * - `stall`: bytes are held, both ways, until the mode changes: a network that
 *   drops every packet, where TCP neither delivers nor fails. New connections
 *   are accepted and hang likewise. Nothing is lost: TCP would retransmit.
 * - `reset`: every connection is reset and new ones are refused (closed at
 *   once), as when the store's host goes away.
 *
 * Changing the mode applies to open connections too.
 */
import { createServer, type Server, Socket } from 'node:net';

export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'delay'; delayMs: number }
  | { kind: 'stall' }
  | { kind: 'reset' };

export interface FaultProxy {
  port: number;
  mode: FaultMode;
  setMode(mode: FaultMode): void;
  close(): Promise<void>;
}

/** One direction of one connection: chunks queued while stalled or delayed, written in order. */
class Pipe {
  readonly #to: Socket;
  readonly #held: Array<{ chunk: Buffer; due: number }> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(to: Socket) {
    this.#to = to;
  }

  push(chunk: Buffer, mode: FaultMode): void {
    const due = mode.kind === 'delay' ? Date.now() + mode.delayMs : Date.now();
    this.#held.push({ chunk, due });
    this.flush(mode);
  }

  flush(mode: FaultMode): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (mode.kind === 'stall' || mode.kind === 'reset') return;
    const now = Date.now();
    while (this.#held.length > 0) {
      const next = this.#held[0] as { chunk: Buffer; due: number };
      const due = mode.kind === 'delay' ? next.due : now;
      if (due > now) {
        this.#timer = setTimeout(() => this.flush(mode), due - now);
        return;
      }
      this.#held.shift();
      if (!this.#to.destroyed) this.#to.write(next.chunk);
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#held.length = 0;
  }
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const connections = new Set<{ client: Socket; upstream: Socket; pipes: Pipe[] }>();
  let mode: FaultMode = { kind: 'pass' };

  const server: Server = createServer((client) => {
    if (mode.kind === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = new Socket();
    const toUpstream = new Pipe(upstream);
    const toClient = new Pipe(client);
    const connection = { client, upstream, pipes: [toUpstream, toClient] };
    connections.add(connection);
    const end = () => {
      if (!connections.delete(connection)) return;
      toUpstream.stop();
      toClient.stop();
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => toUpstream.push(chunk, mode));
    upstream.on('data', (chunk: Buffer) => toClient.push(chunk, mode));
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
    upstream.connect(target.port, target.host);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };

  return {
    port,
    get mode() {
      return mode;
    },
    setMode(next) {
      mode = next;
      for (const connection of connections) {
        if (next.kind === 'reset') {
          connection.client.resetAndDestroy();
          connection.upstream.destroy();
        } else {
          for (const pipe of connection.pipes) pipe.flush(next);
        }
      }
    },
    async close() {
      for (const connection of connections) {
        connection.client.destroy();
        connection.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
