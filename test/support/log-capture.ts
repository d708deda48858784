/**
 * A pino logger whose JSON lines a test reads back as objects, to check what
 * reaches an operator's log.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/logging/create-logger.ts';

/** One JSON log line. */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export interface LogCapture {
  logger: Logger;
  lines: LogLine[];
  /** The lines of one request (by its X-Request-Id). */
  of(requestId: string | null): LogLine[];
}

export function captureLogs(level = 'debug'): LogCapture {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split('\n')) if (text) lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  const logger = pino({ level }, stream);
  return { logger, lines, of: (requestId) => lines.filter((line) => line.req_id === requestId) };
}
