/**
 * Serves the pages' CSS and browser modules from memory. The file list is
 * read once when the app is built, so only files that existed then can be
 * served: no path is ever joined from the request (no traversal to guard).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import type { Middleware } from 'koa';
import { methodNotAllowed } from './method-not-allowed.ts';

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** What an asset answers to; any other method is a 405 (./method-not-allowed.ts). */
const ASSET_METHODS = 'GET, HEAD';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Maps URL prefixes to directories, e.g. `{ '/assets/': 'views/assets' }`. */
export function staticAssets(mounts: Record<string, string>): Middleware<{ route?: string }> {
  const assets = new Map<string, Asset>();
  for (const [prefix, dir] of Object.entries(mounts)) {
    for (const file of listFiles(dir)) {
      const type = TYPES[extname(file)];
      if (!type) continue;
      const body = readFileSync(file);
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      assets.set(prefix + relative(dir, file).split('\\').join('/'), { body, type, etag });
    }
  }
  return async (ctx, next) => {
    const asset = assets.get(ctx.path);
    if (!asset) return next();
    ctx.state.route = '/assets';
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      ctx.set('Allow', ASSET_METHODS);
      return;
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw methodNotAllowed(ASSET_METHODS);
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('ETag', asset.etag);
    if (ctx.get('if-none-match') === asset.etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = asset.type;
    ctx.body = asset.body;
  };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}
