/**
 * A pool id is its file name and the first segment of every URL of the pool,
 * so it must be URL-safe and must not shadow a server-wide route.
 */
import type { Finding } from './finding.ts';

export const RESERVED_POOL_IDS = new Set([
  'api',
  'assets',
  'callback',
  'favicon.ico',
  'healthz',
  'metrics',
  'readyz',
  'robots.txt',
  'signin',
  'signout',
  'static',
  'well-known',
]);

const POOL_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkPoolId(id: string): Finding[] {
  if (!POOL_ID.test(id)) {
    return [
      {
        path: [],
        message: `pool id "${id}" (the file name) must be 1-63 lowercase letters, digits and "-", not starting or ending with "-"`,
      },
    ];
  }
  if (RESERVED_POOL_IDS.has(id)) {
    return [
      {
        path: [],
        message: `pool id "${id}" (the file name) is reserved for a server route; rename the file`,
      },
    ];
  }
  return [];
}
