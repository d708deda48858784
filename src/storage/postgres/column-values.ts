/**
 * The few column types on which pg and PGlite disagree, normalised in one
 * place so every repository returns the same JS values on both backends:
 *
 * | column | pg             | PGlite      | returned as |
 * |--------|----------------|-------------|-------------|
 * | bytea  | Buffer         | Uint8Array  | Uint8Array  |
 * | bigint | string         | number      | number      |
 * | jsonb  | rejects raw JS arrays as input (turns them into a Postgres array) | — | written as JSON text |
 */

/** A plain Uint8Array copy (not a Buffer, so deep equality holds across drivers). */
export function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  throw new Error(`expected bytea, got ${typeof value}`);
}

/** bytea input: pg only recognises Buffer (a Uint8Array is not always encoded as bytea). */
export function fromBytes(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** bigint/count(*) output: pg returns a string to avoid losing precision; our values fit a double. */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' || typeof value === 'bigint') return Number(value);
  throw new Error(`expected a number, got ${typeof value}`);
}

/** jsonb input: JSON text works for both drivers and for arrays. */
export function toJsonb(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Ids arrive from outside (tokens, URLs); a malformed one would make Postgres
 * fail with 22P02 instead of simply finding nothing.
 */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * Rows changed by an UPDATE or DELETE. knex answers a number on pg, but
 * knex-pglite 0.14 labels a delete's response `DEL` rather than `DELETE`, so
 * knex hands back the raw response for `.delete()` (with `affectedRows`).
 */
export function changedRows(result: unknown): number {
  if (typeof result === 'number') return result;
  const { rowCount, affectedRows } = (result ?? {}) as { rowCount?: unknown; affectedRows?: unknown };
  if (typeof rowCount === 'number') return rowCount;
  if (typeof affectedRows === 'number') return affectedRows;
  throw new Error('cannot tell how many rows changed');
}
