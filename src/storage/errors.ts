/**
 * Typed storage errors. Repositories translate driver errors into these, so
 * no layer above storage ever inspects a Postgres error code or a Redis reply.
 */

/** A unique constraint refused a write (e.g. an email already used in the pool). */
export class UniqueViolationError extends Error {
  /** The constraint's name, e.g. `users_pool_id_email_unique`. */
  readonly constraint: string | undefined;

  constructor(constraint: string | undefined, options?: { cause?: unknown }) {
    super(`unique constraint ${constraint ?? '(unknown)'} violated`, options);
    this.name = 'UniqueViolationError';
    this.constraint = constraint;
  }
}

/** Whose limit it is: one user's (passkeys per user) or the whole pool's (passkeys per pool). */
export type LimitScope = 'per_user' | 'per_pool';

/** A limit (passkeys per user, passkeys per pool) would be exceeded; nothing was written. */
export class LimitExceededError extends Error {
  /** The limit's value, e.g. 10 passkeys. */
  readonly limit: number;
  /** Which limit: callers answer a user's full set differently from a full pool. */
  readonly scope: LimitScope;

  constructor(what: string, limit: number, scope: LimitScope = 'per_user') {
    super(`${what} limit of ${limit} reached`);
    this.name = 'LimitExceededError';
    this.limit = limit;
    this.scope = scope;
  }
}

/**
 * A backing service (PostgreSQL or Redis) is unreachable or failing. Postern
 * fails closed: the request answers 503 and nothing is half done.
 * `statusCode` is read by oidc-provider's error handler, so its endpoints
 * answer 503 too rather than 500.
 */
export class StoreUnavailableError extends Error {
  readonly service: 'database' | 'redis';
  readonly statusCode = 503;
  readonly expose = false;

  constructor(service: 'database' | 'redis', options?: { cause?: unknown }) {
    super(`${service} unavailable`, options);
    this.name = 'StoreUnavailableError';
    this.service = service;
  }
}

/**
 * The embedded database's directory is open in another process. PGlite is
 * one process's database: a second one writing the same files would corrupt
 * them, so it is refused instead.
 */
export class DataDirLockedError extends Error {
  readonly dataDir: string;
  /** Who holds it, as the lock file says (`host pid nonce`). */
  readonly holder: string;

  constructor(dataDir: string, holder: string) {
    super(`the embedded database in ${dataDir} is in use (${holder})`);
    this.name = 'DataDirLockedError';
    this.dataDir = dataDir;
    this.holder = holder;
  }
}
