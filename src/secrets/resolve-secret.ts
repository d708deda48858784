/**
 * Finds the operator secret. With shared storage it must be configured
 * (POSTERN_SECRET; the config check enforces it). In embedded mode Postern
 * generates one into the data directory on first start, so `npm start` needs
 * no setup, and says so, because that secret is as precious as the data.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ResolvedSecret {
  secret: string;
  /** Where a generated secret lives; undefined when configured. */
  file?: string;
  /** True when this call created the file. */
  generated: boolean;
}

export async function resolveSecret({
  secret,
  dataDir,
}: {
  secret?: string;
  dataDir: string;
}): Promise<ResolvedSecret> {
  if (secret !== undefined) return { secret, generated: false };
  const file = join(dataDir, 'secret');
  try {
    return { secret: (await readFile(file, 'utf8')).trim(), file, generated: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  const generatedSecret = randomBytes(48).toString('base64url');
  try {
    // `wx`: if another process won the race, keep its secret.
    await writeFile(file, `${generatedSecret}\n`, { mode: 0o600, flag: 'wx' });
    return { secret: generatedSecret, file, generated: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { secret: (await readFile(file, 'utf8')).trim(), file, generated: false };
  }
}
