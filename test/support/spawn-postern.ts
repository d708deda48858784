/** Runs the real `postern` command (bin/postern.js) as a child process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TEST_STORE_TIMEOUTS } from './store-timeouts.ts';

const BIN = fileURLToPath(new URL('../../bin/postern.js', import.meta.url));

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  // A clean slate: only PATH and what the test passes, so the developer's own
  // DATABASE_URL or PUBLIC_URL never leaks into a test.
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOG_LEVEL: 'warn',
    ...TEST_STORE_TIMEOUTS,
    ...env,
  };
}

export function runPostern(
  args: string[],
  env: Record<string, string | undefined> = {},
  { timeoutMs = 60_000, cwd }: { timeoutMs?: number; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(cwd ? { cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface PosternProcess {
  child: ChildProcess;
  output(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartPosternOptions {
  readyUrl: string;
  /**
   * (Optional) With `serve --workers N`: also wait until the cluster's
   * /metrics (beside `readyUrl`) reports this many workers ready, since
   * `readyUrl` answers as soon as the first one listens.
   */
  workers?: number;
  /** (Optional) Called at once with the spawned process, before it is ready. */
  onSpawn?: (child: ChildProcess) => void;
  /** (Optional) Defaults to 60 s. */
  timeoutMs?: number;
  cwd?: string;
}

/**
 * Starts `postern serve …` and resolves once `readyUrl` answers and, with
 * `workers`, once that many workers serve (or rejects when it exits first).
 */
export async function startPosternProcess(
  args: string[],
  env: Record<string, string | undefined>,
  { readyUrl, workers, onSpawn, timeoutMs = 60_000, cwd }: StartPosternOptions,
): Promise<PosternProcess> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
  onSpawn?.(child);
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`postern exited with ${child.exitCode}:\n${output}`);
    const ok =
      (await fetch(readyUrl).then(
        (response) => response.ok,
        () => false,
      )) &&
      (workers === undefined || (await readyWorkers(new URL('/metrics', readyUrl).href)) === workers);
    if (ok) {
      return {
        child,
        output: () => output,
        stop: (signal = 'SIGTERM') => {
          if (child.exitCode === null) child.kill(signal);
          return exited;
        },
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGKILL');
  const what = workers === undefined ? readyUrl : `${readyUrl} with ${workers} workers ready`;
  throw new Error(`postern did not answer ${what} within ${timeoutMs} ms:\n${output}`);
}

/** `postern_cluster_workers_ready` from a cluster's /metrics, or undefined when it does not answer 200. */
export async function readyWorkers(metricsUrl: string): Promise<number | undefined> {
  const response = await fetch(metricsUrl).catch(() => undefined);
  if (!response?.ok) {
    await response?.body?.cancel();
    return undefined;
  }
  const match = /^postern_cluster_workers_ready (\d+)$/m.exec(await response.text());
  return match ? Number(match[1]) : undefined;
}

/** The pids of the processes `pid` forked (a cluster primary's workers). Linux only. */
export function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
}
