/**
 * Separate clients for the race tests: each a browser with a cookie jar of
 * its own (test/support/browserless.ts) that talks over a connection of its
 * own from a source address of its own on the loopback (Linux routes all of
 * 127/8 to lo), so Postern's per-address limits see as many clients as there
 * are tries instead of one script.
 *
 * The transport is test/bench/bench-browser.ts's (node:http with an Agent
 * bound to `localAddress`: global fetch cannot pick a source address without
 * undici's Agent, which is not a dependency); the cookies stay in the
 * Browserless jar, so an AddressedBrowser drives an InteractionClient like
 * any other. One interaction is tried from many clients by sending its
 * Cookie header from fresh ones (`cookieOf`): a fresh jar adds none of its own.
 */
import { Agent } from 'node:http';
import type { ExecutionContext } from 'ava';
import { BenchBrowser, nextSourceAddress } from '../../bench/bench-browser.ts';
import { Browserless } from '../../support/browserless.ts';

/** Where test servers listen (they listen on every address; this one is IPv4, as the source addresses are). */
const CONNECT_HOST = '127.0.0.1';

/** Statuses whose responses carry no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 204, 205, 304]);

export class AddressedBrowser extends Browserless {
  /** The source address every request of this browser comes from. */
  readonly address: string;
  readonly #agent: Agent;

  /** @param address (Optional) Defaults to the next of bench-browser's `nextSourceAddress`. */
  constructor(address = nextSourceAddress()) {
    super();
    this.address = address;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress: address });
  }

  override async fetch(input: string | URL, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const url = new URL(input);
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url);
    if (cookie) headers.set('cookie', cookie);
    let body = init.body ?? undefined;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      headers.set('accept', 'application/json');
      body = JSON.stringify(init.json);
    }
    if (body !== undefined && typeof body !== 'string')
      throw new Error('an AddressedBrowser sends text bodies');
    // A BenchBrowser per request on this browser's connection: its jar stays empty, this one keeps the cookies.
    const answer = await new BenchBrowser({ connectHost: CONNECT_HOST, agent: this.#agent }).send(url, {
      method: init.method ?? 'GET',
      headers: Object.fromEntries(headers),
      ...(body === undefined ? {} : { body }),
    });
    const setCookies = [answer.headers['set-cookie'] ?? []].flat();
    // biome-ignore lint/complexity/useLiteralKeys: store() is private to TypeScript only; the jar must stay Browserless's
    this['store'](url, setCookies);
    const responseHeaders = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      for (const one of [value ?? []].flat()) responseHeaders.append(name, one);
    }
    return new Response(NULL_BODY.has(answer.status) || answer.body === '' ? null : answer.body, {
      status: answer.status,
      headers: responseHeaders,
    });
  }

  /** Closes this browser's connection. */
  close(): void {
    this.#agent.destroy();
  }
}

/** `count` browsers, each on its own source address, closed when the test ends. */
export function separateClients(t: ExecutionContext<unknown>, count: number): AddressedBrowser[] {
  const browsers = Array.from({ length: count }, () => new AddressedBrowser());
  t.teardown(() => {
    for (const browser of browsers) browser.close();
  });
  return browsers;
}

/** The Cookie header `browser` sends to `url`: what another client sends to act in the same interaction. */
export const cookieOf = (browser: Browserless, url: string) => browser.cookieHeader(new URL(url));

export interface RaceAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes
  body: any;
}

/**
 * One JSON call from `browser`: `json` as the body (none when undefined),
 * `headers` on top (another browser's cookies, a bearer token). The body is
 * parsed JSON, `{ text }` when it is not JSON, or undefined when empty.
 */
export async function callJson(
  browser: Browserless,
  url: string,
  {
    method = 'POST',
    json,
    headers = {},
  }: { method?: string; json?: unknown; headers?: Record<string, string> } = {},
): Promise<RaceAnswer> {
  const response = await browser.fetch(url, {
    method,
    headers: { accept: 'application/json', ...headers },
    ...(json === undefined ? {} : { json }),
  });
  const text = await response.text();
  if (!text) return { status: response.status, body: undefined };
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: { text } };
  }
}

/** How many answers had each status, e.g. `{ 200: 1, 400: 49 }`: one readable line when a race goes wrong. */
export function statusCounts(answers: ReadonlyArray<{ status: number }>): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of answers) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}
