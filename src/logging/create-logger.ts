/**
 * JSON logs (pino), pretty-printed when a person watches a terminal. Secrets
 * never reach a log line: credentials and cookies are redacted wherever they
 * appear in a logged object.
 */
import { type Logger, pino } from 'pino';

export type { Logger };

const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.secret',
  '*.client_secret',
  '*.code',
  '*.code_verifier',
  '*.refresh_token',
  '*.access_token',
  '*.id_token',
];

export interface CreateLoggerOptions {
  level?: string;
  /** (Optional) Pretty output for people. Defaults to whether stdout is a terminal. */
  pretty?: boolean;
}

export function createLogger({
  level = 'info',
  pretty = Boolean(process.stdout.isTTY),
}: CreateLoggerOptions = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  });
}
