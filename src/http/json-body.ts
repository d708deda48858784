/**
 * The one reader of JSON request bodies for Postern's own APIs (the
 * interaction API and self-service). Every way a body can be wrong is the
 * client's mistake and gets a 4xx in the house format, never a 500:
 *
 * | body | answer |
 * |------|--------|
 * | not `application/json` (or a charset other than UTF-8, RFC 8259 §8.1) | 415 invalid_request |
 * | a Content-Encoding other than identity, gzip, deflate, br | 415 invalid_request, with `Accept-Encoding` (RFC 9110 §15.5.16) |
 * | more than 64 KB, before or after decompression | 413 request_too_large |
 * | truncated or corrupt compressed data, a request cut off | 400 invalid_request |
 * | bytes that are not UTF-8, text that is not JSON, a JSON scalar | 400 invalid_request |
 * | a string, or an object key, that is not well-formed Unicode (a lone surrogate such as `"\ud800"`) | 400 invalid_request |
 * | a `__proto__` key, or `constructor.prototype` (prototype poisoning) | 400 invalid_request |
 *
 * Lone surrogates are refused at the door because nothing behind it can keep
 * them: PostgreSQL's jsonb refuses them, and its text columns would store
 * them silently changed. An empty body reads as `{}`.
 *
 * `parseBody` then guards the value with the route's zod schema.
 */
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createUnzip } from 'node:zlib';
import type { Context } from 'koa';
import type { z } from 'zod';
import { errorOf, invalidRequest, PosternError } from '../errors.ts';

/** Bodies are small JSON documents; 64 KB leaves room for a large attestation. */
export const JSON_BODY_LIMIT_BYTES = 64 * 1024;

/** The codings a body may arrive in, by their RFC 9110 §8.4.1 names (x-gzip is gzip, §8.4.1.3). */
const DECODERS: Record<string, (() => NodeJS.ReadWriteStream) | undefined> = {
  identity: undefined,
  gzip: createUnzip,
  'x-gzip': createUnzip,
  // HTTP's "deflate" is the zlib format (RFC 1950); createUnzip also takes gzip sent under that name.
  deflate: createUnzip,
  br: createBrotliDecompress,
};
const ACCEPTED_ENCODINGS = 'gzip, deflate, br';

/** A lone surrogate: with the u flag, a paired one is a single code point and does not match. */
const LONE_SURROGATE = /\p{Cs}/u;

// The 415s are built here: errorOf gives invalid_request its usual 400.
const notJson = () => new PosternError(415, 'invalid_request', 'Send the request as application/json.');
const tooLarge = () => errorOf('request_too_large');
const malformed = (detail: string) => invalidRequest('The request is malformed.', detail);

/**
 * Reads the request's JSON body, at most `limitBytes` once decoded.
 *
 * (Optional) `limitBytes` defaults to JSON_BODY_LIMIT_BYTES.
 * @returns the parsed object or array; `{}` when the request has no body.
 * @throws {PosternError} 400, 413 or 415 as the table at the top of this file says.
 */
export async function readJsonBody(
  ctx: Context,
  { limitBytes = JSON_BODY_LIMIT_BYTES }: { limitBytes?: number } = {},
): Promise<unknown> {
  const hasBody = Boolean(ctx.request.length) || ctx.get('transfer-encoding') !== '';
  if (!hasBody) return {};
  if (!ctx.is('application/json')) throw notJson();
  const charset = ctx.request.charset.toLowerCase();
  if (charset !== '' && charset !== 'utf-8' && charset !== 'utf8') throw notJson();

  const coding = (ctx.get('content-encoding') || 'identity').trim().toLowerCase();
  if (!Object.hasOwn(DECODERS, coding)) {
    throw new PosternError(
      415,
      'invalid_request',
      'Send the request uncompressed, or with gzip, deflate or br.',
      {
        detail: `Content-Encoding: ${coding.slice(0, 64)}`,
        headers: { 'Accept-Encoding': ACCEPTED_ENCODINGS },
      },
    );
  }
  if (coding === 'identity' && (ctx.request.length ?? 0) > limitBytes) throw tooLarge();

  const bytes = await readAll(ctx.req, DECODERS[coding]?.(), limitBytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw malformed('the body is not UTF-8');
  }
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw malformed(`not JSON: ${(error as Error).message.slice(0, 200)}`);
  }
  // Only an object or an array, as the JSON APIs take (and as @koa/bodyparser did).
  if (typeof value !== 'object' || value === null) throw malformed('the body is a JSON scalar');
  assertWellFormed(value);
  return value;
}

/**
 * Guards a body with a route's zod schema (STYLE.md rule 1). The first
 * problem's message is shown when it is written for users (a sentence);
 * otherwise the user reads that the request is malformed and the log gets
 * every problem.
 * @throws {PosternError} 400 invalid_request.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const first = result.error.issues[0];
  const description =
    first?.code === 'custom' || first?.message?.endsWith('.') ? first.message : 'The request is malformed.';
  throw invalidRequest(
    description,
    result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
  );
}

/** The decoded body, refused as soon as it passes `limit` (a small compressed body can inflate to gigabytes). */
async function readAll(
  req: Readable,
  decoder: NodeJS.ReadWriteStream | undefined,
  limit: number,
): Promise<Buffer> {
  const source: Readable = decoder ? (req.pipe(decoder) as unknown as Readable) : req;
  // A request that breaks off is seen by the decoder as truncated input.
  const onRequestError = (error: Error) => source.destroy(error);
  if (decoder) req.once('error', onRequestError);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source) {
      size += (chunk as Buffer).length;
      if (size > limit) throw tooLarge();
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof PosternError) throw error;
    throw malformed(
      decoder
        ? `the body could not be decompressed: ${String((error as Error).message)}`
        : `the body could not be read: ${String((error as Error).message)}`,
    );
  } finally {
    req.off('error', onRequestError);
    if (decoder) {
      req.unpipe(decoder as unknown as NodeJS.WritableStream);
      (decoder as unknown as Readable).destroy();
    }
  }
  return Buffer.concat(chunks);
}

/**
 * Every string and key of a parsed body is well-formed Unicode, and no key
 * could poison a prototype (the checks @hapi/bourne makes). Iterative: a
 * 64 KB body nests up to 32,768 levels, too deep for recursion.
 * @throws {PosternError} 400 invalid_request.
 */
function assertWellFormed(root: object): void {
  const pending: Array<{ value: unknown; path: string }> = [{ value: root, path: '' }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value, path } = next;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) throw notUnicode(path || '(body)');
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => {
        pending.push({ value: item, path: `${path}[${index}]` });
      });
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        // Keys are checked before they join a path, so a path never carries a lone surrogate.
        if (LONE_SURROGATE.test(key)) throw notUnicode(`a key under ${path || '(body)'}`);
        const at = path ? `${path}.${key}` : key;
        if (key === '__proto__') throw malformed(`prototype poisoning: ${shorten(at)}`);
        if (
          key === 'constructor' &&
          typeof item === 'object' &&
          item !== null &&
          Object.hasOwn(item, 'prototype')
        )
          throw malformed(`prototype poisoning: ${shorten(at)}.prototype`);
        pending.push({ value: item, path: at });
      }
    }
  }
}

function notUnicode(where: string): PosternError {
  return invalidRequest(
    'The request contains text that is not valid Unicode.',
    `not well-formed Unicode at ${shorten(where)}`,
  );
}

/** A path for the log: a body's keys can make it 64 KB long. */
function shorten(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}
