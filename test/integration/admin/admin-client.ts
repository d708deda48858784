/** What the admin API tests share: a machine client's token, and a call to `/{pool}/api/admin/…`. */
import type { TestServer } from '../../support/postern-server.ts';

/** A client-credentials token of `clientId` (with `secret`) from `poolId`. */
export async function machineToken(
  server: TestServer,
  poolId: string,
  { clientId, secret, scope = 'admin' }: { clientId: string; secret: string; scope?: string },
): Promise<string> {
  const answer = await fetch(`${server.issuer(poolId)}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }).toString(),
  });
  const body = (await answer.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no token for ${clientId}: ${JSON.stringify(body)}`);
  return body.access_token;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes
  body: any;
}

/** Calls the admin API of `poolId` with `token` (none when undefined). */
export async function adminCall(
  server: TestServer,
  poolId: string,
  token: string | undefined,
  method: string,
  path: string,
  json?: unknown,
): Promise<ApiAnswer> {
  const response = await fetch(`${server.url}/${poolId}/api/admin/${path}`, {
    method,
    headers: {
      accept: 'application/json',
      'user-agent': 'admin-api-test',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}
