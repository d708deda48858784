/**
 * `postern serve` on the embedded default (PGlite + in-process store), as a
 * newcomer runs it: first start within 20 s including PGlite's initdb, the same
 * keys after a restart, and a graceful exit on SIGTERM.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { minimalPool, writeConfigDir } from '../../support/config-dir.ts';
import { freePort } from '../../support/postern-server.ts';
import { startPosternProcess } from '../../support/spawn-postern.ts';

test('starts within 20 s on a fresh data directory, keeps its keys across a restart, and stops gracefully', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'postern-data-'));
  const port = await freePort();
  const publicUrl = `http://localhost:${port}`;
  const config = await writeConfigDir({
    server: `data_dir: ${JSON.stringify(dataDir)}\n`,
    pools: { demo: minimalPool(publicUrl) },
  });
  t.teardown(async () => {
    await config.remove();
    await rm(dataDir, { recursive: true, force: true });
  });
  const env = { PUBLIC_URL: publicUrl, PORT: String(port), POSTERN_CONFIG_DIR: config.dir };
  const discovery = `${publicUrl}/demo/.well-known/openid-configuration`;
  const kidsOf = async () =>
    ((await (await fetch(`${publicUrl}/demo/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys
      .map((key) => key.kid)
      .sort();

  // Alone on this machine the first start takes ~6 s (PGlite's initdb); the
  // suite runs files in parallel, so the bound here is looser than the goal.
  const started = Date.now();
  const first = await startPosternProcess(['serve'], env, { readyUrl: discovery, timeoutMs: 60_000 });
  t.log(`first start answered after ${Date.now() - started} ms`);
  const issuer = ((await (await fetch(discovery)).json()) as { issuer: string }).issuer;
  t.is(issuer, `${publicUrl}/demo`);
  const kids = await kidsOf();
  t.is(kids.length, 2);
  t.regex(first.output(), /generated a new secret/);
  t.is(await first.stop('SIGTERM'), 0);

  const second = await startPosternProcess(['serve'], env, { readyUrl: discovery, timeoutMs: 60_000 });
  t.teardown(() => second.stop('SIGKILL'));
  t.deepEqual(await kidsOf(), kids);
  t.notRegex(second.output(), /generated a new secret/);
  t.is(await second.stop('SIGINT'), 0);
});
