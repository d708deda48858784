import test from 'ava';
import { minimalPool, writeConfigDir } from '../../support/config-dir.ts';
import { runPostern } from '../../support/spawn-postern.ts';

test('check-config accepts the shipped configuration', async (t) => {
  const result = await runPostern(['check-config', '--config', 'config']);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /Configuration is valid: 1 pool \(demo\)/);
});

test('check-config lists every problem with file, line and key path, and exits 1', async (t) => {
  const config = await writeConfigDir({
    server: 'public_url: https://id.acme.example\n',
    pools: {
      acme: [
        'passkeys:',
        '  rp:',
        '    id: acme.example',
        '    origins: ["https://id.acme.example", "https://evil.example"]',
        '  timeout: 1h',
        'clients:',
        '  - client_id: web',
        '    client_secret: ${ACME_WEB_SECRET}',
        '    redirect_uris: [http://app.acme.example/cb]',
        '',
      ].join('\n'),
      beta: 'passkeys:\n  rp:\n    id: co.uk\n',
    },
  });
  t.teardown(() => config.remove());
  const result = await runPostern(['check-config', '--config', config.dir]);
  t.is(result.code, 1);
  const lines = result.stdout.trim().split('\n');
  t.regex(
    lines[0] ?? '',
    /acme\.yaml:4:\d+ passkeys\.rp\.origins\[1\]: host "evil\.example" is not the RP ID "acme\.example"/,
  );
  t.regex(lines[1] ?? '', /acme\.yaml:5:\d+ passkeys\.timeout: 1h is out of range/);
  t.regex(lines[2] ?? '', /acme\.yaml:8:\d+ clients\[0\]\.client_secret: \$\{ACME_WEB_SECRET\} is not set/);
  t.regex(lines[3] ?? '', /acme\.yaml:9:\d+ clients\[0\]\.redirect_uris\[0\]: .* must use https/);
  t.regex(lines[4] ?? '', /beta\.yaml:3:\d+ passkeys\.rp\.id: "co\.uk" is a public suffix/);
  t.is(lines[5], '5 problems found.');
});

test('check-config also runs oidc-provider’s client validation', async (t) => {
  const config = await writeConfigDir({
    pools: {
      demo: `${minimalPool()}clients:\n  - client_id: web\n    token_endpoint_auth_method: none\n    redirect_uris: [http://localhost:8080/cb]\n    post_logout_redirect_uris: [http://localhost:8080/]\n    scope: openid unknown_scope\n`,
    },
  });
  t.teardown(() => config.remove());
  const result = await runPostern(['check-config', '--config', config.dir]);
  t.is(result.code, 1, result.stdout);
  t.regex(result.stdout, /pool demo clients\[0\]: oidc-provider refuses this client: .*scope/);
});

test('check-config accepts a client whose ID tokens are signed with RS256, as serve does', async (t) => {
  const client = (id: string, alg: string) =>
    `  - client_id: ${id}\n    token_endpoint_auth_method: none\n    redirect_uris: [http://localhost:8080/cb]\n    id_token_signed_response_alg: ${alg}\n`;
  const config = await writeConfigDir({
    pools: { demo: `${minimalPool()}clients:\n${client('rsa', 'RS256')}${client('ec', 'ES256')}` },
  });
  t.teardown(() => config.remove());
  const result = await runPostern(['check-config', '--config', config.dir]);
  t.is(result.code, 0, result.stdout);
  t.regex(result.stdout, /Configuration is valid: 1 pool \(demo\)/);
});

test('serve refuses to start on an invalid configuration', async (t) => {
  const config = await writeConfigDir({ pools: { demo: 'passkeys:\n  mode: clever\n' } });
  t.teardown(() => config.remove());
  const result = await runPostern(['serve', '--config', config.dir, '--port', '0']);
  t.is(result.code, 1);
  t.regex(result.stderr, /passkeys\.mode: must be one of: smart, classic/);
  t.notRegex(result.stdout + result.stderr, /listening/);
});

test('commands explain themselves and refuse unknown options with exit 1', async (t) => {
  const help = await runPostern(['--help']);
  t.is(help.code, 0);
  for (const command of ['serve', 'migrate', 'check-config', 'keys'])
    t.regex(help.stdout, new RegExp(command));
  const unknown = await runPostern(['serve', '--colour']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /unknown option/);
});
