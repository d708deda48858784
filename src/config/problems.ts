/**
 * A configuration problem, located as precisely as the source allows, so an
 * operator can go straight to the line. Loading collects every problem of
 * every file before reporting (STYLE.md rule 7).
 */

export type ConfigPath = ReadonlyArray<string | number>;

export interface ConfigProblem {
  /** The file, relative to where the command ran, or `environment` for a variable. */
  file: string;
  line?: number;
  column?: number;
  /** Dotted key path, `passkeys.rp.origins[1]`; empty for the file as a whole. */
  path: string;
  message: string;
}

/** `passkeys.rp.origins[1]` from `['passkeys', 'rp', 'origins', 1]`. */
export function formatPath(path: ConfigPath): string {
  return path.reduce<string>((out, part) => {
    if (typeof part === 'number') return `${out}[${part}]`;
    return out ? `${out}.${part}` : part;
  }, '');
}

/** One line an operator can paste into an editor: `file:line:col key: message`. */
export function formatProblem(problem: ConfigProblem): string {
  const where = [problem.file, problem.line, problem.column].filter((part) => part !== undefined).join(':');
  return problem.path ? `${where} ${problem.path}: ${problem.message}` : `${where} ${problem.message}`;
}

/** Thrown by `loadConfig` with everything that is wrong, so callers print it all at once. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(
      `configuration has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((problem) => `  ${formatProblem(problem)}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
