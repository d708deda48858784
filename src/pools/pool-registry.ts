/**
 * The pools this process serves: for each pool file, its resolved config and
 * its oidc-provider, built from the pool's signing keys.
 *
 * Keys can be rotated by `postern keys rotate` while servers run, so the
 * registry re-reads each pool's key list every `keyRefreshSeconds` and, when
 * it changed (or a rotated key's time to sign came), swaps in a provider
 * built with the keys as they stand. Providers hold no
 * state of their own (it is all in the stores), so requests already running on
 * the old one finish normally.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config, PoolConfig } from '../config/types.ts';
import { createProvider, type Provider, type ProviderPages } from '../oidc/create-provider.ts';
import {
  ensureSigningKeys,
  KEY_REFRESH_SECONDS,
  keySetVersion,
  openSigningKeys,
} from '../oidc/signing-keys.ts';
import { validateClients } from '../oidc/validate-clients.ts';
import { deriveKey } from '../secrets/derive-key.ts';
import { signingKeyBox } from '../secrets/signing-key-box.ts';
import type { DurableStore, EphemeralStore, SigningKeyRecord } from '../storage/types.ts';

export interface PoolRuntime {
  config: PoolConfig;
  provider: Provider;
  /** oidc-provider's request handler (its Koa app's callback). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export interface OpenPoolRegistryOptions {
  config: Config;
  durable: DurableStore;
  ephemeral: EphemeralStore;
  /** The operator secret (POSTERN_SECRET or the embedded one). */
  secret: string;
  /** The pages oidc-provider renders for a pool (errors, logout). */
  pagesFor(pool: PoolConfig): ProviderPages;
  onServerError(req: IncomingMessage, error: unknown): void;
  /** (Optional) Seconds between signing key checks. Defaults to KEY_REFRESH_SECONDS (30); 0 disables. */
  keyRefreshSeconds?: number;
  /** (Optional) Reports a failed key refresh (the old keys stay in use). */
  onRefreshError?(poolId: string, error: unknown): void;
}

export interface PoolRegistry {
  get(poolId: string): PoolRuntime | undefined;
  list(): PoolRuntime[];
  /** Re-reads every pool's keys now; rebuilds the providers whose keys changed. */
  refreshKeys(): Promise<void>;
  close(): void;
}

/** Re-exported for callers that already load the registry; the command imports it from secrets/. */
export { signingKeyBox };

/**
 * Builds every pool's provider, creating first signing keys where none exist.
 * @throws {Error} when a client is refused by oidc-provider or a key does not decrypt.
 */
export async function openPoolRegistry(options: OpenPoolRegistryOptions): Promise<PoolRegistry> {
  const {
    config,
    durable,
    ephemeral,
    secret,
    pagesFor,
    onServerError,
    keyRefreshSeconds = KEY_REFRESH_SECONDS,
  } = options;
  const box = signingKeyBox(secret);
  const runtimes = new Map<string, PoolRuntime & { keyVersion: string }>();

  async function build(pool: PoolConfig, records: SigningKeyRecord[]) {
    const provider = createProvider({
      pool,
      stores: { durable, ephemeral },
      accounts: durable.users,
      organizations: durable.organizations,
      sessions: ephemeral,
      jwks: openSigningKeys(records, box),
      cookieKeys: [deriveKey(secret, `cookies:${pool.id}`).toString('base64url')],
      pages: pagesFor(pool),
      onServerError,
    });
    const callback = provider.callback() as (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    return { config: pool, provider, handle: callback, keyVersion: keySetVersion(records) };
  }

  for (const pool of config.pools) {
    await ensureSigningKeys(durable.signingKeys, pool.id, box);
    const runtime = await build(pool, await durable.signingKeys.list(pool.id));
    const problems = await validateClients(runtime.provider, pool);
    if (problems.length > 0) {
      throw new Error(
        `pool ${pool.id}: ${problems.map((problem) => `clients[${problem.index}]: ${problem.message}`).join('; ')}`,
      );
    }
    runtimes.set(pool.id, runtime);
  }

  async function refreshKeys() {
    await Promise.all(
      config.pools.map(async (pool) => {
        try {
          const current = runtimes.get(pool.id);
          const records = await durable.signingKeys.list(pool.id);
          if (current && keySetVersion(records) === current.keyVersion) return;
          runtimes.set(pool.id, await build(pool, records));
        } catch (error) {
          options.onRefreshError?.(pool.id, error);
        }
      }),
    );
  }

  const timer =
    keyRefreshSeconds > 0 ? setInterval(refreshKeys, keyRefreshSeconds * 1000).unref() : undefined;

  return {
    get: (poolId) => runtimes.get(poolId),
    list: () => [...runtimes.values()],
    refreshKeys,
    close: () => clearInterval(timer),
  };
}
