/**
 * JSON logs (pino), pretty-printed when a person watches a terminal. Secrets
 * never reach a log line: credentials and cookies are redacted wherever they
 * appear in a logged object.
 *
 * Pretty output is for a newcomer reading the console: one line per event
 * (a request is `GET /path 200 3ms`, its request id and fields stay in the
 * JSON), and a line marked as a notice (the email code when no SMTP server is
 * set, src/email/mailer.ts) stands out: bold, marked `>>>`, between blank lines.
 */
import { type Logger, pino } from 'pino';
import pinoPretty from 'pino-pretty';

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

/**
 * The field that marks a line a person must not miss (its message says it
 * all): `logger.info({ notice: 'email' }, 'Email code for …')`.
 */
export const NOTICE = 'notice';

/** Fields the pretty output leaves out: the request line's message already says them, or they are for machines. */
const PRETTY_IGNORED = ['pid', 'hostname', 'req_id', NOTICE, 'method', 'path', 'route', 'status', 'ms'];

const CONTROL = /\p{Cc}/gu;

export interface CreateLoggerOptions {
  level?: string;
  /** (Optional) Pretty output for people. Defaults to whether stdout is a terminal. */
  pretty?: boolean;
  /** (Optional) Where lines go. Defaults to stdout; a stream is for tests (never colored). */
  destination?: NodeJS.WritableStream;
}

export function createLogger({
  level = 'info',
  pretty = Boolean(process.stdout.isTTY),
  destination,
}: CreateLoggerOptions = {}): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  if (!pretty) return destination ? pino(options, destination) : pino(options);

  // Formatted in this thread and written synchronously: a development console, where
  // a line must be there when the request it tells of is answered, and none lost at exit.
  const format = pinoPretty.prettyFactory({
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: PRETTY_IGNORED.join(','),
    singleLine: true,
    // `error` holds an error code on request lines; only `err` is an Error.
    errorLikeObjectKeys: ['err'],
    colorize: destination === undefined && pinoPretty.isColorSupported,
    messageFormat: (log, messageKey, _levelLabel, { colors }) => {
      // A function's result is not cleaned by pino-pretty: no control character reaches the terminal.
      const message = String(log[messageKey] ?? '').replace(CONTROL, ' ');
      return log[NOTICE] ? colors.bold(`>>> ${message}`) : message;
    },
  });
  const out = destination ?? process.stdout;
  // Bold alone is lost without colors (NO_COLOR, a pipe, a CI log): a notice
  // also gets a `>>>` mark and a blank line either side. Only a key is written
  // `"notice":` in a JSON line; a string value would have its quotes escaped.
  const noticeKey = `"${NOTICE}":`;
  return pino(options, {
    write: (line: string) => out.write(line.includes(noticeKey) ? `\n${format(line)}\n` : format(line)),
  });
}
