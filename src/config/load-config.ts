/**
 * Loads the configuration directory: `postern.yaml` (optional) and one file
 * per pool under `pools/`. Order of work for each file: parse YAML (keeping
 * positions), substitute `${VAR}`, apply environment overrides (server only),
 * validate the shape with the zod schema, fill derived defaults, then run the
 * cross-checks in ./checks/. Every problem of every file is collected and
 * reported together, each with file, line:column and key path.
 */
import { access, readdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { z } from 'zod';
import { withAccountClient } from './account-client.ts';
import { checkClients } from './checks/check-clients.ts';
import { checkFactors } from './checks/check-factors.ts';
import { checkHostedOrigin, checkOrigins } from './checks/check-origins.ts';
import { checkPoolId } from './checks/check-pool-id.ts';
import { checkRpId } from './checks/check-rp-id.ts';
import { checkServer } from './checks/check-server.ts';
import type { Finding, PoolCheck } from './checks/finding.ts';
import { ConfigError, type ConfigPath, type ConfigProblem, formatPath } from './problems.ts';
import { PoolFileSchema, ServerFileSchema } from './schema.ts';
import { type Config, deepFreeze, type PoolConfig, resolvePool, type ServerConfig } from './types.ts';
import { parseYaml, readYamlFile, type YamlFile } from './yaml-file.ts';

const POOL_CHECKS: PoolCheck[] = [checkRpId, checkOrigins, checkHostedOrigin, checkClients, checkFactors];

/** Environment variables that override the server file (CONTRACT.md). */
export const ENV_OVERRIDES: ReadonlyArray<readonly [variable: string, path: readonly string[]]> = [
  ['PUBLIC_URL', ['public_url']],
  ['PORT', ['port']],
  ['DATABASE_URL', ['database', 'url']],
  ['DATABASE_TIMEOUT_MS', ['database', 'timeout_ms']],
  ['REDIS_URL', ['redis', 'url']],
  ['REDIS_TIMEOUT_MS', ['redis', 'timeout_ms']],
  ['SMTP_URL', ['email', 'smtp_url']],
  ['POSTERN_SECRET', ['secret']],
  ['LOG_LEVEL', ['log_level']],
];

export interface LoadConfigOptions {
  /** (Optional) The configuration directory. Defaults to POSTERN_CONFIG_DIR, then `./config`. */
  dir?: string;
  /** (Optional) Environment for `${VAR}` and overrides. Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export type ReadConfigResult =
  | { config: Config; problems: [] }
  | { config?: undefined; problems: ConfigProblem[] };

/**
 * Loads and validates the whole configuration.
 * @throws {ConfigError} listing every problem found.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const result = await readConfig(options);
  if (!result.config) throw new ConfigError(result.problems);
  return result.config;
}

/** Like `loadConfig`, but returns the problems instead of throwing (for `check-config`). */
export async function readConfig({
  dir,
  env = process.env,
}: LoadConfigOptions = {}): Promise<ReadConfigResult> {
  const configDir = resolve(dir ?? (env.POSTERN_CONFIG_DIR || './config'));
  const shown = (path: string) => relative(process.cwd(), path) || path;
  const problems: ConfigProblem[] = [];

  if (!(await exists(configDir))) {
    return {
      problems: [{ file: shown(configDir), path: '', message: 'configuration directory does not exist' }],
    };
  }

  const serverPath = join(configDir, 'postern.yaml');
  const serverSource = (await exists(serverPath))
    ? await readYamlFile(serverPath, shown(serverPath), env)
    : parseYaml('{}', shown(serverPath), env);
  problems.push(...serverSource.problems);
  const server = validateServer(serverSource, configDir, env, problems);

  // In pool files `${PUBLIC_URL}` is the server's public URL, however it was
  // set (the variable, the server file, or the default from the port).
  const poolEnv = { ...env, PUBLIC_URL: server.config.public_url };
  const poolsDir = join(configDir, 'pools');
  const poolFiles = (await exists(poolsDir))
    ? (await readdir(poolsDir)).filter((name) => /^[^.].*\.ya?ml$/.test(name)).sort()
    : [];
  if (poolFiles.length === 0) {
    problems.push({
      file: shown(poolsDir),
      path: '',
      message: 'no pool files (pools/<id>.yaml); there is nothing to serve',
    });
  }

  const pools: PoolConfig[] = [];
  const seenIds = new Set<string>();
  for (const name of poolFiles) {
    const id = name.replace(/\.ya?ml$/, '');
    const source = await readYamlFile(join(poolsDir, name), shown(join(poolsDir, name)), poolEnv);
    problems.push(...source.problems);
    problems.push(...locateAll(source, checkPoolId(id)));
    if (seenIds.has(id))
      problems.push({ file: source.file, path: '', message: `pool id "${id}" is defined twice` });
    seenIds.add(id);
    if (source.data === undefined) continue;

    const { value, findings } = validate(PoolFileSchema, source.data);
    if (value) {
      // Cross-checks run even on a file with shape problems (invalid values fall
      // back to defaults), so one run reports everything.
      const pool = resolvePool(id, value, server.config.public_url);
      const checks = server.valid ? POOL_CHECKS : POOL_CHECKS.filter((check) => check !== checkHostedOrigin);
      findings.push(...checks.flatMap((check) => check(pool, server.config, source.data)));
      pools.push(pool);
    }
    problems.push(...locateAll(source, withoutReported(findings, source.problems)));
  }

  if (problems.length > 0) return { problems: sortProblems(problems) };
  return {
    config: deepFreeze({ server: server.config, pools: pools.map(withAccountClient) }),
    problems: [],
  };
}

/**
 * Validates the server file with the environment overrides applied. Returns a
 * usable configuration even when something is wrong (invalid values replaced by
 * defaults) so the pool files can still be checked; `valid` says which it is.
 */
function validateServer(
  source: YamlFile,
  configDir: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): { config: ServerConfig; valid: boolean } {
  const data = structuredClone(source.data ?? {}) as Record<string, unknown>;
  const overridden = new Map<string, string>();
  for (const [variable, path] of ENV_OVERRIDES) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    setIn(data, path, value);
    overridden.set(formatPath(path), variable);
  }
  // A finding on a value that came from the environment names the variable, not a line.
  const locateServer = (finding: Finding): ConfigProblem => {
    const path = formatPath(finding.path);
    const variable = overridden.get(path);
    if (variable) return { file: `environment ${variable}`, path, message: finding.message };
    return {
      file: source.file,
      ...source.locate(finding.path, { key: finding.key }),
      path,
      message: finding.message,
    };
  };

  const { value, findings } = validate(ServerFileSchema, data);
  const parsed = value ?? ServerFileSchema.parse({});
  const { public_url, ...rest } = parsed;
  const config: ServerConfig = {
    ...rest,
    public_url: (public_url ?? `http://localhost:${rest.port}`).replace(/\/$/, ''),
    data_dir: resolve(rest.data_dir),
    config_dir: configDir,
  };
  findings.push(...checkServer(config));
  problems.push(...withoutReported(findings, source.problems).map(locateServer));
  return { config, valid: findings.length === 0 && source.problems.length === 0 };
}

const MAX_REPAIRS = 8;

/**
 * Parses `data` with `schema`, reporting every issue. To let cross-checks run
 * anyway, each offending value is removed (so its default applies) and the
 * data parsed again; `value` is undefined only when no repair succeeds.
 */
function validate<S extends z.ZodType>(
  schema: S,
  data: unknown,
): { value: z.output<S> | undefined; findings: Finding[] } {
  const findings: Finding[] = [];
  let candidate = structuredClone(data);
  for (let attempt = 0; attempt < MAX_REPAIRS; attempt++) {
    const result = schema.safeParse(candidate, { reportInput: true });
    if (result.success) return { value: result.data, findings };
    const fresh = zodFindings(result.error);
    if (attempt === 0) findings.push(...fresh);
    for (const finding of fresh) candidate = removeAt(candidate, finding.path);
  }
  return { value: undefined, findings };
}

function zodFindings(error: z.ZodError): Finding[] {
  return error.issues.flatMap((issue): Finding[] => {
    const path = issue.path as ConfigPath;
    switch (issue.code) {
      case 'unrecognized_keys':
        return issue.keys.map((key) => ({ path: [...path, key], key: true, message: 'unknown key' }));
      case 'invalid_type':
        return [
          { path, message: issue.input === undefined ? 'is required' : `must be ${article(issue.expected)}` },
        ];
      case 'invalid_value':
        return [{ path, message: `must be one of: ${issue.values.map(String).join(', ')}` }];
      case 'too_big':
        return [
          {
            path,
            message:
              issue.origin === 'array'
                ? `has more than ${issue.maximum} entries`
                : `must be at most ${issue.maximum}`,
          },
        ];
      case 'too_small':
        return [
          {
            path,
            message: issue.message.startsWith('Too small')
              ? `must be at least ${issue.minimum}`
              : issue.message,
          },
        ];
      default:
        return [{ path, message: issue.message }];
    }
  });
}

/** Drops findings on a value already reported while reading the file (a missing `${VAR}`). */
function withoutReported(findings: Finding[], reported: readonly ConfigProblem[]): Finding[] {
  const paths = new Set(reported.map((problem) => problem.path));
  return findings.filter((finding) => !paths.has(formatPath(finding.path)));
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** A copy of `data` without the value at `path` (an array entry is removed, a key deleted). */
function removeAt(data: unknown, path: ConfigPath): unknown {
  if (path.length === 0) return {};
  const [head, ...rest] = path;
  if (Array.isArray(data) && typeof head === 'number') {
    return rest.length === 0
      ? data.filter((_, index) => index !== head)
      : data.map((item, index) => (index === head ? removeAt(item, rest) : item));
  }
  if (data && typeof data === 'object' && typeof head === 'string') {
    const copy: Record<string, unknown> = { ...(data as Record<string, unknown>) };
    if (rest.length === 0) delete copy[head];
    else copy[head] = removeAt(copy[head], rest);
    return copy;
  }
  return data;
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort(
    (a, b) =>
      a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
  );
}

function locateAll(source: YamlFile, findings: Finding[]): ConfigProblem[] {
  return findings.map((finding) => ({
    file: source.file,
    ...source.locate(finding.path, { key: finding.key }),
    path: formatPath(finding.path),
    message: finding.message,
  }));
}

function setIn(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const child = node[key];
    node[key] = child && typeof child === 'object' && !Array.isArray(child) ? child : {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
