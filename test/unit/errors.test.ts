/**
 * The error catalogue (src/errors.ts): its codes are stable snake_case names
 * with error statuses, and every PosternError thrown in src/ names a
 * catalogued code with one of that code's statuses (the type checks the code;
 * this checks the status, which a call site states again).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import {
  ERROR_CODES,
  type ErrorCode,
  type ErrorCodeEntry,
  errorOf,
  lastSecondFactor,
  lastWayIn,
  noSuchPasskey,
  notFound,
  PosternError,
  passkeyLimit,
  passkeysBusy,
  rateLimited,
} from '../../src/errors.ts';

const entries = Object.entries(ERROR_CODES) as [ErrorCode, ErrorCodeEntry][];
const statusesOf = (entry: ErrorCodeEntry) => [entry.status, ...(entry.otherStatuses ?? [])];

test('codes are unique snake_case names', (t) => {
  const codes = entries.map(([code]) => code);
  t.is(new Set(codes.map((code) => code.toLowerCase())).size, codes.length);
  for (const code of codes) t.regex(code, /^[a-z]+(?:_[a-z]+)*$/, code);
});

test('statuses are client or server errors, and descriptions are sentences', (t) => {
  for (const [code, entry] of entries) {
    for (const status of statusesOf(entry)) t.true(status >= 400 && status <= 599, `${code}: ${status}`);
    if (entry.description !== undefined) t.regex(entry.description, /^[A-Z].*[.]$/, code);
  }
});

test('errorOf takes the status and the sentence from the catalogue; a given sentence wins', (t) => {
  const error = errorOf('invalid_token', { detail: 'why', headers: { 'WWW-Authenticate': 'Bearer' } });
  t.true(error instanceof PosternError);
  t.like(error, {
    status: 401,
    code: 'invalid_token',
    description: 'Sign in again to continue.',
    detail: 'why',
    headers: { 'WWW-Authenticate': 'Bearer' },
  });
  t.like(errorOf('invalid_request', { description: 'Say more.' }), {
    status: 400,
    description: 'Say more.',
  });
});

test('the factories answer as they always did', (t) => {
  t.like(notFound(), { status: 404, code: 'not_found', description: 'Nothing here.' });
  t.like(noSuchPasskey(), { status: 404, code: 'not_found', description: 'There is no such passkey.' });
  t.like(rateLimited(0.2), { status: 429, code: 'rate_limited', headers: { 'Retry-After': '1' } });
  t.like(rateLimited(30.5), { headers: { 'Retry-After': '31' } });
  t.like(passkeyLimit(3), { status: 400, code: 'passkey_limit' });
  t.regex(passkeyLimit(3).description, /already have 3 passkeys/);
  t.like(lastWayIn(), { status: 409, code: 'last_way_in' });
  t.like(lastSecondFactor(), { status: 409, code: 'last_second_factor' });
  t.like(passkeysBusy(), { status: 409, code: 'conflict' });
});

async function sourceFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) found.push(path);
  }
  return found;
}

test('every PosternError thrown in src/ has a status its code is catalogued with', async (t) => {
  const throws: string[] = [];
  for (const file of await sourceFiles('src')) {
    const text = await readFile(file, 'utf8');
    for (const [, status, code] of text.matchAll(/new PosternError\(\s*(\d{3}),\s*'([a-z_]+)'/g)) {
      throws.push(`${file}: ${status} ${code}`);
      const entry: ErrorCodeEntry | undefined = ERROR_CODES[code as ErrorCode];
      t.truthy(entry, `${file}: ${code} is not catalogued`);
      if (entry) t.true(statusesOf(entry).includes(Number(status)), `${file}: ${code} with ${status}`);
    }
  }
  t.true(throws.length > 10, 'the scan found the throws');
});
