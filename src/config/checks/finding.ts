import type { ConfigPath } from '../problems.ts';
import type { PoolConfig, ServerConfig } from '../types.ts';

/** What a check reports: where (a key path in the file it checks) and what is wrong. */
export interface Finding {
  path: ConfigPath;
  message: string;
  /** Point at the key rather than its value (a key that should not be there). */
  key?: boolean;
}

/** `file`: the pool file as written, before defaults: a check may tell what the operator wrote. */
export type PoolCheck = (pool: PoolConfig, server: ServerConfig, file: unknown) => Finding[];
export type ServerCheck = (server: ServerConfig) => Finding[];
