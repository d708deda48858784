/**
 * `postern serve` on the embedded default (PGlite + in-process store), as a
 * newcomer runs it: the shipped config/ on a port of their choosing (PORT, or
 * --port), the same keys after a restart, a graceful exit on SIGTERM, and a
 * second process kept off the embedded database while the server has it.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { freePort } from '../../support/postern-server.ts';
import { runPostern, startPosternProcess } from '../../support/spawn-postern.ts';

const SHIPPED_CONFIG = fileURLToPath(new URL('../../../config', import.meta.url));

test('the shipped config serves on any port, keeps its keys across a restart, and owns its data directory', async (t) => {
  // A newcomer's checkout: the shipped config/, and ./data created beside it.
  const home = await mkdtemp(join(tmpdir(), 'postern-embedded-'));
  await cp(SHIPPED_CONFIG, join(home, 'config'), { recursive: true });
  t.teardown(() => rm(home, { recursive: true, force: true }));
  const port = await freePort();
  const publicUrl = `http://localhost:${port}`;
  const env = { PORT: String(port) };
  const discovery = `${publicUrl}/demo/.well-known/openid-configuration`;
  const kidsOf = async () =>
    ((await (await fetch(`${publicUrl}/demo/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys
      .map((key) => key.kid)
      .sort();

  // Alone on this machine the first start takes ~6 s (PGlite's initdb); the
  // suite runs files in parallel, so the bound here is looser than the goal.
  const started = Date.now();
  const first = await startPosternProcess(['serve'], env, {
    readyUrl: discovery,
    timeoutMs: 60_000,
    cwd: home,
  });
  t.teardown(() => first.stop('SIGKILL'));
  t.log(`first start answered after ${Date.now() - started} ms`);
  const issuer = ((await (await fetch(discovery)).json()) as { issuer: string }).issuer;
  t.is(issuer, `${publicUrl}/demo`, 'the issuer follows PORT');
  t.is((await fetch(`${publicUrl}/`)).status, 200, 'the demo app is served');
  const kids = await kidsOf();
  t.is(kids.length, 2);
  t.regex(first.output(), /generated a new secret/);

  // PGlite is one process's database: a second process is refused, not let in to corrupt it.
  const rotate = await runPostern(['keys', 'rotate', '--pool', 'demo'], env, { cwd: home });
  t.is(rotate.code, 1, rotate.stderr);
  t.regex(rotate.stderr, /open in another Postern process .*stop the server first/);
  t.is(await first.stop('SIGTERM'), 0);

  // --port works like PORT, and the keys made on the first start are still there.
  const otherPort = await freePort();
  const otherUrl = `http://localhost:${otherPort}`;
  const second = await startPosternProcess(
    ['serve', '--port', String(otherPort)],
    {},
    {
      readyUrl: `${otherUrl}/demo/.well-known/openid-configuration`,
      timeoutMs: 60_000,
      cwd: home,
    },
  );
  t.teardown(() => second.stop('SIGKILL'));
  const moved = (await (await fetch(`${otherUrl}/demo/.well-known/openid-configuration`)).json()) as {
    issuer: string;
    jwks_uri: string;
  };
  t.is(moved.issuer, `${otherUrl}/demo`);
  const keys = (await (await fetch(moved.jwks_uri)).json()) as { keys: Array<{ kid: string }> };
  t.deepEqual(keys.keys.map((key) => key.kid).sort(), kids);
  t.notRegex(second.output(), /generated a new secret/);
  t.is(await second.stop('SIGINT'), 0);

  // With the server gone, the lock is released: keys rotate works on the embedded database.
  const rotated = await runPostern(['keys', 'rotate', '--pool', 'demo'], {}, { cwd: home });
  t.is(rotated.code, 0, rotated.stderr);
});
