import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DataDirLockedError } from '../../../src/storage/errors.ts';
import { lockDataDir } from '../../../src/storage/postgres/data-dir-lock.ts';

async function dataDir(t: { teardown(fn: () => Promise<void>): void }) {
  const parent = await mkdtemp(join(tmpdir(), 'postern-lock-'));
  t.teardown(() => rm(parent, { recursive: true, force: true }));
  return join(parent, 'pglite');
}

test('one holder at a time; the release lets the next one in', async (t) => {
  const dir = await dataDir(t);
  const release = await lockDataDir(dir);
  t.regex(
    await readFile(`${dir}.lock`, 'utf8'),
    new RegExp(`^${hostname()} ${process.pid} [0-9a-f]{16}\\n$`),
  );
  const attempts = await Promise.allSettled([lockDataDir(dir), lockDataDir(dir)]);
  t.true(
    attempts.every(
      (attempt) => attempt.status === 'rejected' && attempt.reason instanceof DataDirLockedError,
    ),
  );
  await release();
  const again = await lockDataDir(dir);
  await again();
});

test('of two processes racing for a free directory, one wins', async (t) => {
  const dir = await dataDir(t);
  const attempts = await Promise.allSettled(Array.from({ length: 5 }, () => lockDataDir(dir)));
  t.is(attempts.filter((attempt) => attempt.status === 'fulfilled').length, 1);
});

test('a lock of a dead process on this host is taken over; one from another host is not', async (t) => {
  const dir = await dataDir(t);
  // A pid above the kernel's maximum is never running.
  await writeFile(`${dir}.lock`, `${hostname()} 99999999 deadbeefdeadbeef\n`);
  const release = await lockDataDir(dir);
  await release();

  await writeFile(`${dir}.lock`, 'other-host 1 deadbeefdeadbeef\n');
  const error = await t.throwsAsync(() => lockDataDir(dir), { instanceOf: DataDirLockedError });
  t.regex(error?.message ?? '', /other-host 1/);
  t.is(await readFile(`${dir}.lock`, 'utf8'), 'other-host 1 deadbeefdeadbeef\n', 'left for the operator');

  await writeFile(`${dir}.lock`, '');
  await t.throwsAsync(() => lockDataDir(dir), { instanceOf: DataDirLockedError }, 'an empty lock is held');
});

test('releasing does not remove a lock someone else holds by then', async (t) => {
  const dir = await dataDir(t);
  const release = await lockDataDir(dir);
  await writeFile(`${dir}.lock`, 'other-host 7 0123456789abcdef\n');
  await release();
  t.is(await readFile(`${dir}.lock`, 'utf8'), 'other-host 7 0123456789abcdef\n');
});
