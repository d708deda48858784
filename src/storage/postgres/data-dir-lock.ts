/**
 * A lock file beside PGlite's data directory, holding the pid of the process
 * that has it open. A second process (another `serve`, or `keys rotate` or
 * `migrate` while a server runs) is refused with DataDirLockedError; a lock
 * left by a process that died is taken over.
 */
import { open, readFile, unlink } from 'node:fs/promises';
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

/**
 * Takes the lock on `dataDir`. Resolves to its release.
 * @throws {DataDirLockedError} when a live process holds it.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = `${dataDir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(path, 'wx');
      await file.writeFile(String(process.pid));
      await file.close();
      return () => unlink(path).catch(() => {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
      // Our own pid in the file is a lock left by an earlier run under the same
      // pid (a restarted container is pid 1 again), not a live holder.
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new DataDirLockedError(dataDir, holder);
      }
      await unlink(path).catch(() => {});
    }
  }
  throw new DataDirLockedError(dataDir, -1);
}
