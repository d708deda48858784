/**
 * Where one sign-in's store round trips come from, hop by hop: the Redis
 * commands Postern sends (MONITOR, kept to Postern's own connections: those
 * that touch its key prefix) and the SQL statements it runs (PostgreSQL's
 * `log_statement = 'all'` for the bench database only, read back from the
 * server log). The caller sets log_statement on the database before this
 * Postern opens its connections (ALTER DATABASE applies to new sessions) and
 * runs one untraced sign-in first, so boot-time and first-use work (signing
 * keys, prepared scripts) stay out of the trace.
 *
 * Counting: a Redis command is one round trip, except that a MULTI … EXEC
 * block counts once (ioredis sends it in one write); commands a Lua script
 * runs are listed under its EVALSHA and not counted. A SQL statement is one
 * round trip (the pg driver sends parse/bind/execute in one go), BEGIN and
 * COMMIT included.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type BenchUser, posternSignIn, type Target } from './flows.ts';

export interface TracedStep {
  step: string;
  redis: string[];
  redisRoundTrips: number;
  /** Commands run inside Lua scripts (not round trips). */
  redisInScripts: number;
  sql: string[];
}

/** Waited after each hop, so writes a request does not await (if any) land in its step. */
const STEP_QUIET_MS = 150;

/** The PostgreSQL server log: BENCH_POSTGRES_LOG, else the newest /var/log/postgresql/*.log. */
export function postgresLogPath(): string | undefined {
  if (process.env.BENCH_POSTGRES_LOG) return process.env.BENCH_POSTGRES_LOG;
  const dir = '/var/log/postgresql';
  try {
    return readdirSync(dir)
      .filter((name) => name.endsWith('.log'))
      .map((name) => join(dir, name))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  } catch {
    return undefined;
  }
}

/** Reads what was appended to a file since the last call. */
function tail(path: string) {
  let offset = statSync(path).size;
  return () => {
    const size = statSync(path).size;
    if (size <= offset) return '';
    const buffer = Buffer.alloc(size - offset);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, buffer, 0, buffer.length, offset);
    } finally {
      closeSync(fd);
    }
    offset = size;
    return buffer.toString('utf8');
  };
}

/** `statement: …` and `execute <name>: …` entries of `database`, one line each. */
function statementsOf(log: string, database: string): string[] {
  const entries = log.split(/\n(?=\d{4}-\d\d-\d\d )/);
  const statements: string[] = [];
  for (const entry of entries) {
    const match = /^\S+ \S+ \S+ \[\d+\] \S*@(\S*) LOG:\s+(?:statement|execute [^:]*): ([\s\S]*)$/.exec(entry);
    if (match?.[1] === database)
      statements.push(shorten((match[2] as string).replace(/\s+/g, ' ').trim(), 150));
  }
  return statements;
}

function shorten(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/** Names for Postern's Lua scripts, by SHA-1 of their source (EVALSHA shows only that). */
async function scriptNames(): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const scripts = (await import('../../src/storage/redis/redis-scripts.ts').catch(() => ({}))) as Record<
    string,
    unknown
  >;
  for (const [name, source] of Object.entries(scripts)) {
    if (typeof source === 'string') names.set(createHash('sha1').update(source).digest('hex'), name);
  }
  return names;
}

/** A command as one short line: the prefix dropped, ids and payloads elided. */
function describeCommand(args: string[], prefix: string, scripts: Map<string, string>): string {
  const [command = '', ...rest] = args;
  const shown = rest.map((arg, index) => {
    if (command.toLowerCase() === 'evalsha' && index === 0) return scripts.get(arg) ?? `${arg.slice(0, 8)}…`;
    const bare = (arg.startsWith(prefix) ? arg.slice(prefix.length) : arg).replace(
      /[A-Za-z0-9_-]{20,}/g,
      '{id}',
    );
    return bare.length > 60 ? '{…}' : bare;
  });
  return shorten([command.toUpperCase(), ...shown].join(' '), 150);
}

export interface TraceOptions {
  target: Target;
  user: BenchUser;
  redisUrl: string;
  redisKeyPrefix: string;
  database: string;
  logPath: string;
}

export async function traceSignIn({
  target,
  user,
  redisUrl,
  redisKeyPrefix,
  database,
  logPath,
}: TraceOptions): Promise<TracedStep[]> {
  const scripts = await scriptNames();
  const monitorClient = new Redis(redisUrl);
  const monitor = await monitorClient.monitor();
  const seen: Array<{ args: string[]; source: string }> = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ args, source }));
  const readLog = tail(logPath);
  const ours = new Set<string>();
  let consumed = 0;
  const steps: TracedStep[] = [];
  try {
    await sleep(STEP_QUIET_MS);
    seen.length = 0;
    readLog();
    await posternSignIn(
      target,
      user,
      {},
      {
        onStep: async (step) => {
          await sleep(STEP_QUIET_MS);
          const lines = seen.slice(consumed);
          consumed = seen.length;
          for (const line of lines) {
            if (line.source !== 'lua' && line.args.some((arg) => arg.startsWith(redisKeyPrefix)))
              ours.add(line.source);
          }
          const traced: TracedStep = { step, redis: [], redisRoundTrips: 0, redisInScripts: 0, sql: [] };
          let inMulti = false;
          for (const { args, source } of lines) {
            const described = describeCommand(args, redisKeyPrefix, scripts);
            if (source === 'lua') {
              if (!args.some((arg) => arg.startsWith(redisKeyPrefix))) continue;
              traced.redis.push(`    (in script) ${described}`);
              traced.redisInScripts += 1;
              continue;
            }
            if (!ours.has(source)) continue;
            const command = (args[0] ?? '').toLowerCase();
            traced.redis.push(`${inMulti && command !== 'exec' ? '  ' : ''}${described}`);
            if (command === 'multi') {
              inMulti = true;
              traced.redisRoundTrips += 1;
            } else if (command === 'exec') inMulti = false;
            else if (!inMulti) traced.redisRoundTrips += 1;
          }
          traced.sql = statementsOf(readLog(), database);
          steps.push(traced);
        },
      },
    );
  } finally {
    monitor.disconnect();
    monitorClient.disconnect();
  }
  return steps;
}
