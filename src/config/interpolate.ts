/**
 * `${VAR}` and `${VAR:-default}` in configuration values, with shell
 * semantics: the default applies when the variable is unset or empty. `$${`
 * writes a literal `${`. A variable that is unset and has no default is a
 * problem, never an empty string, so a forgotten secret stops the server.
 */

const REFERENCE = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export type InterpolationResult = { value: string; missing: string[] };

export function interpolate(text: string, env: NodeJS.ProcessEnv): InterpolationResult {
  const missing: string[] = [];
  const value = text.replace(
    REFERENCE,
    (whole, escaped: string, name: string, fallback: string | undefined) => {
      if (escaped) return whole.slice(1);
      const set = env[name];
      if (set !== undefined && set !== '') return set;
      if (fallback !== undefined) return fallback;
      if (set === undefined) missing.push(name);
      return '';
    },
  );
  return { value, missing };
}
