/**
 * Writes a throwaway configuration directory (server file + pool files) for a
 * test, and removes it afterwards.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ConfigDir {
  dir: string;
  remove(): Promise<void>;
}

export async function writeConfigDir({
  server = '',
  pools,
}: {
  server?: string;
  pools: Record<string, string>;
}): Promise<ConfigDir> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-config-'));
  await mkdir(join(dir, 'pools'));
  await writeFile(join(dir, 'postern.yaml'), server);
  for (const [name, source] of Object.entries(pools)) {
    await writeFile(join(dir, 'pools', name.includes('.') ? name : `${name}.yaml`), source);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A minimal valid pool for `public_url` (default http://localhost:3000). */
export function minimalPool(publicUrl = 'http://localhost:3000'): string {
  return `
passkeys:
  rp:
    id: ${new URL(publicUrl).hostname}
    origins: ["${publicUrl}"]
`;
}
