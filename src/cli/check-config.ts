/**
 * `postern check-config`: validates every file, prints every problem, and
 * also runs oidc-provider's own client validation, so nothing that would stop
 * `serve` passes here. Needs no database or Redis.
 */
import { readConfig } from '../config/load-config.ts';
import { type ConfigProblem, formatProblem } from '../config/problems.ts';
import { validatePoolClients } from '../oidc/validate-clients.ts';
import { EXIT } from './exit-codes.ts';

export async function checkConfig(
  configDir: string | undefined,
  out: (line: string) => void,
): Promise<number> {
  const { config, problems } = await readConfig({ dir: configDir });
  const all: ConfigProblem[] = [...problems];
  for (const pool of config?.pools ?? []) {
    for (const { index, message } of await validatePoolClients(pool)) {
      all.push({ file: `pool ${pool.id}`, path: `clients[${index}]`, message });
    }
  }

  if (all.length > 0) {
    for (const problem of all) out(formatProblem(problem));
    out(`${all.length} problem${all.length === 1 ? '' : 's'} found.`);
    return EXIT.invalid;
  }
  const ids = config?.pools.map((pool) => pool.id) ?? [];
  out(`Configuration is valid: ${ids.length} pool${ids.length === 1 ? '' : 's'} (${ids.join(', ')}).`);
  return EXIT.ok;
}
