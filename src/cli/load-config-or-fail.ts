/**
 * Loads the configuration for a command, turning a ConfigError into exit 1.
 * Its own module, without storage, so that `serve --workers N`'s primary
 * (which only supervises) reads the configuration without loading the
 * database and Redis clients.
 */
import { loadConfig } from '../config/load-config.ts';
import { ConfigError } from '../config/problems.ts';
import type { Config } from '../config/types.ts';
import { CommandError, EXIT } from './exit-codes.ts';

/**
 * Loads the configuration or fails with exit 1. `port` (`serve --port`) counts
 * as the PORT variable, so the default public URL (and `${PUBLIC_URL}` in pool
 * files) follows it.
 * @throws {CommandError} exit 1 with every problem, when the configuration is invalid.
 */
export async function loadConfigOrFail(
  configDir: string | undefined,
  { port }: { port?: number } = {},
): Promise<Config> {
  try {
    const env = port === undefined ? process.env : { ...process.env, PORT: String(port) };
    return await loadConfig({ dir: configDir, env });
  } catch (error) {
    if (error instanceof ConfigError) throw new CommandError(error.message, EXIT.invalid);
    throw error;
  }
}
