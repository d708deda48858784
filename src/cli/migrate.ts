/** `postern migrate`: applies pending migrations; a second run (or a concurrent one) applies nothing. */
import type { Logger } from '../logging/create-logger.ts';
import { EXIT } from './exit-codes.ts';
import { openRuntime } from './open-runtime.ts';

export async function migrate(
  configDir: string | undefined,
  logger: Logger,
  out: (line: string) => void,
): Promise<number> {
  const runtime = await openRuntime(configDir, logger);
  try {
    const { applied } = await runtime.durable.migrate();
    out(
      applied.length === 0
        ? 'Database is up to date.'
        : `Applied ${applied.length} migration(s): ${applied.join(', ')}.`,
    );
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
