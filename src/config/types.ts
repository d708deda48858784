/**
 * The resolved configuration every other layer reads: the files' shape with
 * every default filled in (including the ones derived from public_url), and
 * frozen, so nothing downstream can change what was validated.
 */
import type { PoolFile, ServerFile } from './schema.ts';

export interface ServerConfig extends Omit<ServerFile, 'public_url'> {
  /** The public origin, without a trailing slash. */
  public_url: string;
  /** Absolute path of the configuration directory. */
  config_dir: string;
}

type PoolPasskeys = PoolFile['passkeys'];

export interface PoolConfig extends Omit<PoolFile, 'display_name' | 'passkeys'> {
  /** The pool id: the file name without `.yaml`. */
  id: string;
  /** `{public_url}/{id}`. */
  issuer: string;
  display_name: string;
  passkeys: Omit<PoolPasskeys, 'rp'> & {
    rp: { id: string; display_name: string; origins: string[] };
  };
}

export interface Config {
  server: ServerConfig;
  pools: PoolConfig[];
}

/** Fills the defaults a pool file derives from its id and the server's public URL. */
export function resolvePool(id: string, file: PoolFile, publicUrl: string): PoolConfig {
  const display_name = file.display_name ?? id;
  const { rp } = file.passkeys;
  return {
    ...file,
    id,
    issuer: `${publicUrl}/${id}`,
    display_name,
    passkeys: {
      ...file.passkeys,
      rp: {
        id: rp.id ?? new URL(publicUrl).hostname,
        display_name: rp.display_name ?? display_name,
        origins: rp.origins ?? [publicUrl],
      },
    },
  };
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
