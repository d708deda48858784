/**
 * A browser without a browser: fetch with a cookie jar that honours cookie
 * paths (oidc-provider scopes its interaction cookie to one interaction), and
 * never follows redirects, so tests can assert each hop.
 */

interface StoredCookie {
  value: string;
  path: string;
  expires: number;
}

export class Browserless {
  readonly #cookies = new Map<string, StoredCookie>();

  /** Cookies sent to `url`, most specific path first, as a browser orders them. */
  cookieHeader(url: URL): string {
    const now = Date.now();
    return [...this.#cookies.entries()]
      .filter(([, cookie]) => cookie.expires > now && pathMatches(url.pathname, cookie.path))
      .sort((a, b) => b[1].path.length - a[1].path.length)
      .map(([key, cookie]) => `${key.split('|')[0]}=${cookie.value}`)
      .join('; ');
  }

  async fetch(input: string | URL, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const url = new URL(input);
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url);
    if (cookie) headers.set('cookie', cookie);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      headers.set('accept', 'application/json');
      body = JSON.stringify(init.json);
    }
    const response = await fetch(url, { ...init, headers, body, redirect: 'manual' });
    this.store(url, response.headers.getSetCookie());
    return response;
  }

  /** GETs `url` and follows redirects on the same origin, returning the first response that leaves it or is not a redirect. */
  async follow(input: string | URL, { origin }: { origin: string }): Promise<Response> {
    let url = new URL(input);
    for (let hops = 0; hops < 10; hops++) {
      const response = await this.fetch(url);
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || !location) return response;
      const next = new URL(location, url);
      if (next.origin !== origin) return response;
      url = next;
    }
    throw new Error('too many redirects');
  }

  private store(url: URL, setCookies: string[]): void {
    for (const header of setCookies) {
      const [pair = '', ...attributes] = header.split(';').map((part) => part.trim());
      const index = pair.indexOf('=');
      const name = pair.slice(0, index);
      const value = pair.slice(index + 1);
      let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expires = Number.POSITIVE_INFINITY;
      for (const attribute of attributes) {
        const [key = '', attributeValue = ''] = attribute.split('=');
        if (key.toLowerCase() === 'path') path = attributeValue;
        if (key.toLowerCase() === 'expires') expires = Date.parse(attributeValue);
        if (key.toLowerCase() === 'max-age') expires = Date.now() + Number(attributeValue) * 1000;
      }
      const key = `${name}|${path}`;
      if (expires <= Date.now() || value === '') this.#cookies.delete(key);
      else this.#cookies.set(key, { value, path, expires });
    }
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}
