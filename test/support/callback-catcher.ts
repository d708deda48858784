/**
 * Stands in for a relying app's redirect URI: a loopback HTTP server that
 * records each callback the browser lands on, so a test can redeem the code
 * with openid-client exactly as an app would.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CallbackCatcher {
  /** The redirect URI to register: http://127.0.0.1:PORT/callback. */
  redirectUri: string;
  /** Resolves with the next callback URL received. */
  next(timeoutMs?: number): Promise<URL>;
  close(): Promise<void>;
}

export async function startCallbackCatcher(): Promise<CallbackCatcher> {
  const received: URL[] = [];
  let wake: (() => void) | undefined;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    if (url.pathname !== '/callback') return void res.writeHead(404).end(); // e.g. /favicon.ico
    received.push(url);
    wake?.();
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<!doctype html><title>App</title><p>Back at the app.</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    async next(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('the browser never came back to the app');
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, left);
        });
      }
      return received.shift() as URL;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
