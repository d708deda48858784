/**
 * Maps PostgreSQL/PGlite driver errors to the typed storage errors, so no layer
 * above storage ever inspects a SQLSTATE or a socket error code.
 *
 * - 23505 unique_violation → UniqueViolationError(constraint)
 * - the server or the network going away (connection refused, DNS, timeouts,
 *   class 08 connection exceptions, 57P01–57P03 shutdown/startup, 53300 too
 *   many connections, knex's pool acquire timeout, the serving timeouts:
 *   pg's query timeout, 57014 statement timeout, 25P03 idle in transaction)
 *   → StoreUnavailableError
 * - anything else is a bug or a caller error and is rethrown unchanged.
 *
 * SQLSTATE list: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
import { StoreUnavailableError, UniqueViolationError } from '../errors.ts';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/**
 * SQLSTATEs meaning "the server cannot serve you right now". 57014 and 25P03
 * are the serving pool's statement_timeout and idle-in-transaction timeout
 * (open-durable-store.ts): a database too slow to answer in time.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '25P03']);

/** pg reports some connection losses only in the message, without a code. */
const UNAVAILABLE_MESSAGES = [
  // knex puts a failed query's SQL before pg's message: matched at the end.
  /Connection terminated( unexpectedly| due to connection timeout)?$/,
  /connection timeout/i,
  /Client has encountered a connection error/,
  /(^| - )timeout expired$/,
  // The serving pool's query_timeout: no answer in time (open-durable-store.ts).
  /(^| - )Query read timeout$/,
  // A transaction's query timed out, its connection was closed (discardOnTimeout), and the ROLLBACK failed.
  /(^| - )Client was closed and is not queryable$/,
];

interface DriverError {
  code?: unknown;
  constraint?: unknown;
  name?: unknown;
  message?: unknown;
  errors?: unknown;
}

function isUnavailable(error: DriverError): boolean {
  const code = typeof error.code === 'string' ? error.code : undefined;
  if (code !== undefined) {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code))
      return true;
  }
  // knex: "Knex: Timeout acquiring a connection. The pool is probably full."
  if (error.name === 'KnexTimeoutError') return true;
  const message = typeof error.message === 'string' ? error.message : '';
  if (UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message))) return true;
  // Node's happy-eyeballs connect reports every address it tried in an AggregateError.
  if (Array.isArray(error.errors)) {
    return error.errors.some((inner) => typeof inner === 'object' && inner !== null && isUnavailable(inner));
  }
  return false;
}

/**
 * Returns the error to throw in place of a driver error.
 * @returns a UniqueViolationError, a StoreUnavailableError('database'), or `error` itself.
 */
export function translateError(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  if (error instanceof UniqueViolationError || error instanceof StoreUnavailableError) return error;
  const driverError = error as DriverError;
  if (driverError.code === '23505') {
    const constraint = typeof driverError.constraint === 'string' ? driverError.constraint : undefined;
    // No cause: driver errors carry the row's values (emails, keys), which must not reach a log.
    return new UniqueViolationError(constraint);
  }
  if (isUnavailable(driverError)) return new StoreUnavailableError('database', { cause: error });
  return error;
}

/**
 * Wraps every async method of a repository so that driver errors leave it
 * translated (see translateError). Other properties pass through.
 */
export function withTranslatedErrors<T extends object>(repository: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(repository)) {
    wrapped[key] =
      typeof value === 'function'
        ? async (...args: unknown[]) => {
            try {
              return await value.apply(repository, args);
            } catch (error) {
              throw translateError(error);
            }
          }
        : value;
  }
  return wrapped as T;
}
