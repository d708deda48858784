/**
 * `postern keys rotate --pool ID`: a new signing key per algorithm, published
 * by every running server first and signing 90 s later (oidc/signing-keys.ts);
 * the old keys stay published until nothing signed with them can still be valid.
 */
import type { Logger } from '../logging/create-logger.ts';
import {
  KEY_REFRESH_SECONDS,
  RETIRED_KEY_RETENTION_SECONDS,
  rotateSigningKeys,
} from '../oidc/signing-keys.ts';
import { signingKeyBox } from '../secrets/signing-key-box.ts';
import { EXIT } from './exit-codes.ts';
import { assertMigrated, noSuchPool, openRuntime } from './open-runtime.ts';

export async function rotateKeys(
  configDir: string | undefined,
  poolId: string,
  logger: Logger,
  out: (line: string) => void,
): Promise<number> {
  const runtime = await openRuntime(configDir, logger);
  try {
    if (!runtime.config.pools.some((pool) => pool.id === poolId)) throw noSuchPool(runtime.config, poolId);
    await assertMigrated(runtime.durable);
    const { kids, signsFrom } = await rotateSigningKeys(
      runtime.durable.signingKeys,
      poolId,
      signingKeyBox(runtime.secret.secret),
    );
    out(`Pool ${poolId}: new keys ${kids.join(', ')} are published within ${KEY_REFRESH_SECONDS} s.`);
    out(
      `They sign from ${signsFrom.toISOString()} (running servers switch within ${KEY_REFRESH_SECONDS} s of it); ` +
        `the previous keys stay published for ${RETIRED_KEY_RETENTION_SECONDS / 3600} h after that.`,
    );
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
