/**
 * A lock file beside PGlite's data directory, naming the process that has it
 * open (`host pid nonce`). A second process (another `serve`, or `keys
 * rotate` or `migrate` while a server runs) is refused with
 * DataDirLockedError. The file appears whole or not at all (written aside,
 * then hard-linked into place, which fails if it exists), and is removed
 * only by its owner.
 *
 * A lock left by a process that died is taken over only when that can be
 * told: the same host, and a pid that is not running, or our own pid on a
 * lock this process did not take (a restarted container is pid 1 again). A lock from another host (another
 * container on a shared volume) is never judged stale here: the operator
 * removes it, as the error says.
 */
import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { DataDirLockedError } from '../errors.ts';

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The locks this process holds, by content: our pid on a lock not among them is an earlier run's. */
const holding = new Set<string>();

/** Whether the lock `content` describes can be taken over. */
function isStale(content: string): boolean {
  const [host, pidText] = content.trim().split(' ');
  const pid = Number.parseInt(pidText ?? '', 10);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0) return false;
  return pid === process.pid ? !holding.has(content) : !isAlive(pid);
}

/** Puts the draft in place; EEXIST when a lock is there. Where hard links are not supported, writes it in place. */
async function place(draft: string, path: string, content: string): Promise<void> {
  try {
    await link(draft, path);
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EXDEV') throw error;
    await writeFile(path, content, { flag: 'wx' });
  }
}

/**
 * Takes the lock on `dataDir`. Resolves to its release.
 * @throws {DataDirLockedError} when another process holds it.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = `${dataDir}.lock`;
  const mine = `${hostname()} ${process.pid} ${randomBytes(8).toString('hex')}\n`;
  const draft = `${path}.${randomBytes(8).toString('hex')}`;
  await writeFile(draft, mine, { flag: 'wx' });
  holding.add(mine); // before it can be seen, so no attempt of ours judges it stale
  let taken = false;
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await place(draft, path, mine);
        taken = true;
        return async () => {
          holding.delete(mine);
          if ((await readFile(path, 'utf8').catch(() => '')) === mine) await unlink(path).catch(() => {});
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const held = await readFile(path, 'utf8').catch(() => '');
        if (!isStale(held)) throw new DataDirLockedError(dataDir, held.trim() || 'another process');
        // Remove exactly the stale lock we read, not one another process just took.
        if ((await readFile(path, 'utf8').catch(() => '')) === held) await unlink(path).catch(() => {});
      }
    }
    throw new DataDirLockedError(dataDir, 'another process');
  } finally {
    if (!taken) holding.delete(mine);
    await unlink(draft).catch(() => {});
  }
}
