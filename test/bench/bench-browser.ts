/**
 * One flow's HTTP client, as a browser with a fresh profile would be: its own
 * cookie jar (honouring cookie paths: oidc-provider scopes the interaction
 * cookie to one interaction), its own keep-alive connection, and its own
 * source address on the loopback (Linux routes all of 127/8 to lo), so
 * Postern's per-address limits see many clients instead of one script.
 *
 * node:http rather than fetch: fetch cannot pick a source address without
 * undici's Agent, which is not a dependency. Redirects are never followed
 * here; flows follow them hop by hop. Requests go to the server's listen
 * address while Host carries the URL's (public) host, as a browser behind a
 * name would send it.
 */
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface BenchResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * Source addresses 127.1.0.1 … 127.254.255.254, handed out in turn: each
 * flow gets the next one. Postern allows 60 passkey verifications per address
 * in 5 minutes and 60 authorization requests per minute; a few dozen
 * addresses would be throttled within a minute at the rates measured here,
 * sixteen million never are.
 */
let addressCounter = 0;
export function nextSourceAddress(): string {
  const index = addressCounter++ % (254 * 256 * 254);
  const second = 1 + Math.floor(index / (256 * 254));
  const third = Math.floor(index / 254) % 256;
  const fourth = 1 + (index % 254);
  return `127.${second}.${third}.${fourth}`;
}

/** One request as the fault runs (test/chaos) see it: what was asked, how it was answered, and when. */
export interface RequestRecord {
  method: string;
  path: string;
  /** 0 when no answer came (the connection failed or timed out). */
  status: number;
  /** performance.now() when it was sent, and how long the answer took, in milliseconds. */
  startedAt: number;
  durationMs: number;
  contentType: string;
  /** The start of a 5xx answer's body (or the connection error), to judge it; empty otherwise. */
  failure: string;
}

let requestObserver: ((record: RequestRecord) => void) | undefined;

/** Calls `observer` with every request any BenchBrowser completes; `undefined` stops. */
export function observeRequests(observer: ((record: RequestRecord) => void) | undefined): void {
  requestObserver = observer;
}

/** A stuck request fails its flow instead of stalling the closed loop. */
const REQUEST_TIMEOUT_MS = 30_000;

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

export class BenchBrowser {
  readonly #agent: Agent;
  readonly #ownsAgent: boolean;
  readonly #connectHost: string;
  readonly #cookies = new Map<string, StoredCookie>();

  /**
   * @param options.connectHost Where the server listens (requests go there whatever the URL's host).
   * @param options.localAddress (Optional) The source address. Defaults to the next of `nextSourceAddress`.
   * @param options.agent (Optional) A shared agent instead of one of its own (server-to-server calls).
   */
  constructor({
    connectHost,
    localAddress = nextSourceAddress(),
    agent,
  }: {
    connectHost: string;
    localAddress?: string;
    agent?: Agent;
  }) {
    this.#connectHost = connectHost;
    this.#ownsAgent = agent === undefined;
    this.#agent = agent ?? new Agent({ keepAlive: true, maxSockets: 1, localAddress });
  }

  send(url: URL, { method = 'GET', headers = {}, body }: RequestOptions = {}): Promise<BenchResponse> {
    const cookie = this.#cookieHeader(url);
    const allHeaders: Record<string, string> = { host: url.host, 'user-agent': 'postern-bench', ...headers };
    if (cookie) allHeaders.cookie = cookie;
    if (body !== undefined) allHeaders['content-length'] = String(Buffer.byteLength(body));
    const observer = requestObserver;
    if (!observer) return this.#send(url, method, allHeaders, body);
    const startedAt = performance.now();
    const record = (status: number, contentType: string, failure: string) =>
      observer({
        method,
        path: url.pathname,
        status,
        startedAt,
        durationMs: performance.now() - startedAt,
        contentType,
        failure: failure.slice(0, 600),
      });
    return this.#send(url, method, allHeaders, body).then(
      (response) => {
        const contentType = String(response.headers['content-type'] ?? '');
        record(response.status, contentType, response.status >= 500 ? response.body : '');
        return response;
      },
      (error: Error) => {
        record(0, '', error.message);
        throw error;
      },
    );
  }

  #send(
    url: URL,
    method: string,
    allHeaders: Record<string, string>,
    body: string | undefined,
  ): Promise<BenchResponse> {
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          agent: this.#agent,
          host: this.#connectHost,
          port: url.port,
          path: `${url.pathname}${url.search}`,
          method,
          headers: allHeaders,
        },
        (incoming) => {
          const chunks: Buffer[] = [];
          incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
          incoming.on('error', reject);
          incoming.on('end', () => {
            this.#store(url, incoming.headers['set-cookie'] ?? []);
            resolve({
              status: incoming.statusCode ?? 0,
              headers: incoming.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            });
          });
        },
      );
      outgoing.on('error', reject);
      outgoing.setTimeout(REQUEST_TIMEOUT_MS, () =>
        outgoing.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms: ${method} ${url.pathname}`)),
      );
      outgoing.end(body);
    });
  }

  /** Closes the flow's connection; a shared agent stays open. */
  close(): void {
    if (this.#ownsAgent) this.#agent.destroy();
  }

  #cookieHeader(url: URL): string {
    return [...this.#cookies.values()]
      .filter((cookie) => pathMatches(url.pathname, cookie.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((cookie) => `${cookie.name}=${cookie.value}`)
      .join('; ');
  }

  #store(url: URL, setCookies: string[]): void {
    for (const header of setCookies) {
      const [pair = '', ...attributes] = header.split(';').map((part) => part.trim());
      const index = pair.indexOf('=');
      const name = pair.slice(0, index);
      const value = pair.slice(index + 1);
      let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = value === '';
      for (const attribute of attributes) {
        const [key = '', attributeValue = ''] = attribute.split('=');
        const lower = key.toLowerCase();
        if (lower === 'path') path = attributeValue;
        if (lower === 'expires' && Date.parse(attributeValue) <= Date.now()) expired = true;
        if (lower === 'max-age' && Number(attributeValue) <= 0) expired = true;
      }
      const key = `${name}|${path}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path });
    }
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}
