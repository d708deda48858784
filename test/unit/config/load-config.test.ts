import test from 'ava';
import { readConfig } from '../../../src/config/load-config.ts';
import { type ConfigProblem, formatProblem } from '../../../src/config/problems.ts';
import { writeConfigDir } from '../../support/config-dir.ts';

const ACME_SERVER = 'public_url: https://id.acme.example\n';

/** Reads a config made of one pool file (acme.yaml) and returns its problems. */
async function problemsOf(pool: string, { server = ACME_SERVER, env = {} } = {}): Promise<ConfigProblem[]> {
  const config = await writeConfigDir({ server, pools: { acme: pool } });
  try {
    return (await readConfig({ dir: config.dir, env })).problems;
  } finally {
    await config.remove();
  }
}

const acmePool = (passkeys: string, extra = '') => `display_name: Acme
passkeys:
  rp:
${passkeys}
${extra}`;

const withRp = (id: string, origins = '["https://id.acme.example"]') =>
  acmePool(`    id: ${id}\n    origins: ${origins}`);

test('accepts a valid pool and fills every default', async (t) => {
  const config = await writeConfigDir({ server: ACME_SERVER, pools: { acme: withRp('acme.example') } });
  const { config: loaded, problems } = await readConfig({ dir: config.dir, env: {} });
  await config.remove();
  t.deepEqual(problems, []);
  const pool = loaded?.pools[0];
  t.is(pool?.id, 'acme');
  t.is(pool?.issuer, 'https://id.acme.example/acme');
  t.is(pool?.passkeys.timeout, 300);
  t.is(pool?.passkeys.registration.max_per_user, 10);
  t.is(pool?.self_service.recent_auth, 300);
  t.deepEqual(pool?.authentication.first_factor, ['passkey', 'email_otp']);
  t.true(Object.isFrozen(pool?.passkeys.rp));
});

const rpIdCases: Array<[string, string, RegExp]> = [
  ['a public suffix', 'co.uk', /public suffix/],
  ['a private public suffix', 'github.io', /public suffix/],
  ['a bare TLD', 'example', /public suffix/],
  ['an IP address', '192.0.2.1', /IP address/],
  ['a scheme', 'https://acme.example', /bare domain/],
  ['a port', 'acme.example:443', /bare domain/],
  ['a path', 'acme.example/login', /bare domain/],
  ['upper case', 'Acme.example', /lowercase/],
  ['an invalid label', 'acme-.example', /not a valid domain/],
];
for (const [what, rpId, message] of rpIdCases) {
  test(`refuses an RP ID that is ${what}`, async (t) => {
    const problems = await problemsOf(withRp(rpId));
    const problem = problems.find((p) => p.path === 'passkeys.rp.id');
    t.truthy(problem, JSON.stringify(problems));
    t.regex(problem?.message ?? '', message);
    t.is(problem?.line, 4);
  });
}

test('accepts localhost and subdomains of a registrable domain as RP ID', async (t) => {
  t.deepEqual(await problemsOf(withRp('id.acme.example')), []);
  t.deepEqual(
    await problemsOf(acmePool('    id: localhost\n    origins: ["http://localhost:3000"]'), {
      server: 'public_url: http://localhost:3000\n',
    }),
    [],
  );
});

const originCases: Array<[string, string, RegExp]> = [
  [
    'a trailing slash',
    'https://id.acme.example/',
    /exactly scheme:\/\/host\[:port\].*did you mean "https:\/\/id.acme.example"/,
  ],
  ['a path', 'https://id.acme.example/login', /without path/],
  ['a wildcard', 'https://*.acme.example', /wildcard/],
  ['plain http', 'http://id.acme.example', /must use https/],
  ['another domain', 'https://evil.example', /not the RP ID "acme.example"/],
  ['a look-alike suffix', 'https://evilacme.example', /not the RP ID/],
  ['a look-alike prefix', 'https://acme.example.evil.example', /not the RP ID/],
  ['not a URL', 'acme.example', /not a URL/],
  ['upper case', 'https://ID.acme.example', /exactly/],
];
for (const [what, origin, message] of originCases) {
  test(`refuses an origin with ${what}`, async (t) => {
    const problems = await problemsOf(withRp('acme.example', `["https://id.acme.example", "${origin}"]`));
    const problem = problems.find((p) => p.path === 'passkeys.rp.origins[1]');
    t.truthy(problem, JSON.stringify(problems));
    t.regex(problem?.message ?? '', message);
    t.is(problem?.line, 5);
  });
}

test('refuses a localhost look-alike origin for RP ID localhost', async (t) => {
  const problems = await problemsOf(
    acmePool(
      '    id: localhost\n    origins: ["http://localhost:3000", "http://localhost.evil.example:3000"]',
    ),
    { server: 'public_url: http://localhost:3000\n' },
  );
  t.deepEqual(
    problems.map((p) => p.path),
    ['passkeys.rp.origins[1]'],
  );
});

test('requires the public URL among the origins, where the hosted pages run', async (t) => {
  const problems = await problemsOf(withRp('acme.example', '["https://login.acme.example"]'));
  t.deepEqual(
    problems.map((p) => [p.path, p.message]),
    [
      [
        'passkeys.rp.origins',
        'must include public_url "https://id.acme.example", where the hosted sign-in pages run their ceremonies',
      ],
    ],
  );
});

test('keeps durations and limits in range', async (t) => {
  const problems = await problemsOf(
    acmePool(
      '    id: acme.example',
      '  timeout: 20s\n  registration:\n    max_per_user: 101\nself_service:\n  recent_auth: soon',
    ),
  );
  t.deepEqual(
    problems.map((p) => [p.path, p.message]),
    [
      ['passkeys.timeout', '20s is out of range (30s to 10m)'],
      ['passkeys.registration.max_per_user', 'must be at most 100'],
      ['self_service.recent_auth', '"soon" is not a duration (write e.g. 30s, 5m, 1h)'],
    ],
  );
});

test('accepts the edges of the ceremony timeout and passkey limit', async (t) => {
  t.deepEqual(
    await problemsOf(
      acmePool('    id: acme.example', '  timeout: 10m\n  registration:\n    max_per_user: 1'),
    ),
    [],
  );
  t.deepEqual(await problemsOf(acmePool('    id: acme.example', '  timeout: 30')), []);
});

test('needs a non-empty list of known first factors', async (t) => {
  const empty = await problemsOf(acmePool('    id: acme.example', 'authentication:\n  first_factor: []'));
  t.deepEqual(
    empty.map((p) => p.message),
    ['needs at least one first factor'],
  );
  const unknown = await problemsOf(
    acmePool('    id: acme.example', 'authentication:\n  first_factor: [passkey, sms]'),
  );
  t.deepEqual(
    unknown.map((p) => [p.path, p.message]),
    [['authentication.first_factor[1]', 'must be one of: passkey, email_otp, password']],
  );
});

test('a required second factor must be a passkey; recovery codes only stand in for one', async (t) => {
  const pool = (authentication: string) =>
    acmePool('    id: acme.example', `authentication:\n${authentication}`);
  const codesOnly = await problemsOf(
    pool('  second_factor: [recovery_code]\n  second_factor_required: always'),
  );
  t.deepEqual(
    codesOnly.map((p) => p.path),
    ['authentication.second_factor'],
  );
  t.regex(codesOnly[0]?.message ?? '', /must list passkey/);
  t.is((await problemsOf(pool('  second_factor: []\n  second_factor_required: when_enrolled'))).length, 1);
  t.deepEqual(await problemsOf(pool('  second_factor: [passkey]\n  second_factor_required: always')), []);

  const onePasskey = await problemsOf(
    acmePool(
      '    id: acme.example',
      'authentication:\n  second_factor_required: always\n  passkey_counts_as_two_factors: false',
    ).replace('  rp:', '  registration:\n    max_per_user: 1\n  rp:'),
  );
  t.deepEqual(
    onePasskey.map((p) => p.path),
    ['passkeys.registration.max_per_user'],
  );
});

test('passkeys switched off must leave a first factor and require no second factor', async (t) => {
  const off = (authentication: string) =>
    acmePool('    id: acme.example', `authentication:\n${authentication}`).replace(
      'passkeys:\n',
      'passkeys:\n  enabled: false\n',
    );
  const passkeyOnly = await problemsOf(off('  first_factor: [passkey]'));
  t.deepEqual(
    passkeyOnly.map((p) => [p.path, p.message]),
    [
      [
        'passkeys.enabled',
        'is false, which leaves no first factor: add email_otp or password to authentication.first_factor',
      ],
    ],
  );
  const required = await problemsOf(
    off('  first_factor: [passkey, email_otp]\n  second_factor: [passkey]\n  second_factor_required: always'),
  );
  t.true(
    required.some((p) => p.path === 'passkeys.enabled' && /second_factor_required: always/.test(p.message)),
  );
  t.deepEqual(await problemsOf(off('  first_factor: [passkey, email_otp]')), []);
  t.deepEqual(
    await problemsOf(
      off('  first_factor: [email_otp]\n  second_factor: [totp]\n  second_factor_required: when_enrolled'),
    ),
    [],
    'an authenticator app can be the second factor without passkeys',
  );
});

test('refuses second factors no sign-in will ever ask for', async (t) => {
  const pool = (authentication: string) =>
    acmePool('    id: acme.example', `authentication:\n${authentication}`);
  // A pool that never asks lists what its organizations that require MFA ask for,
  // which are never recovery codes: they are issued only where sign-ins ask.
  t.deepEqual(
    await problemsOf(pool('  second_factor: [passkey, totp]\n  second_factor_required: never')),
    [],
  );
  const neverCodes = await problemsOf(
    pool('  second_factor: [passkey, recovery_code, totp]\n  second_factor_required: never'),
  );
  t.deepEqual(
    neverCodes.map((p) => p.path),
    ['authentication.second_factor'],
  );
  t.regex(neverCodes[0]?.message ?? '', /recovery_code, which no user of this pool ever gets/);

  // A passkey-only pool whose passkeys count as two factors never reaches a second step.
  const passkeyOnly = await problemsOf(
    pool(
      '  first_factor: [passkey]\n  second_factor: [passkey, recovery_code]\n  second_factor_required: always',
    ),
  );
  t.deepEqual(
    passkeyOnly.map((p) => p.path),
    ['authentication.second_factor'],
  );
  t.regex(passkeyOnly[0]?.message ?? '', /counts as two factors/);

  // Where something leaves a second step owed, the list is used; and the defaults are no promise.
  t.deepEqual(
    await problemsOf(
      pool(
        '  first_factor: [passkey]\n  second_factor: [passkey, recovery_code]\n  second_factor_required: always\n  passkey_counts_as_two_factors: false',
      ).replace('  rp:', '  registration:\n    max_per_user: 2\n  rp:'),
    ),
    [],
  );
  t.deepEqual(await problemsOf(pool('  first_factor: [passkey]')), []);
});

test('the shipped demo pool passes every check', async (t) => {
  const result = await readConfig({ dir: new URL('../../../config/', import.meta.url).pathname, env: {} });
  t.deepEqual(result.problems, []);
});

test('reports unknown keys at the key, with its line', async (t) => {
  const problems = await problemsOf(acmePool('    id: acme.example\n    colour: blue'));
  t.deepEqual(
    problems.map((p) => [p.path, p.message, p.line, p.column]),
    [['passkeys.rp.colour', 'unknown key', 5, 5]],
  );
});

const clients = (body: string) => acmePool('    id: acme.example', `clients:\n${body}`);
const SECRET = 'a-client-secret-that-is-long-enough-0123';

test('refuses duplicate client ids within a pool', async (t) => {
  const problems = await problemsOf(
    clients(
      `  - { client_id: web, client_secret: ${SECRET}, redirect_uris: [https://app.acme.example/cb] }\n` +
        `  - { client_id: web, client_secret: ${SECRET}, redirect_uris: [https://app.acme.example/cb] }`,
    ),
  );
  t.deepEqual(
    problems.map((p) => [p.path, p.message]),
    [['clients[1].client_id', '"web" is already the id of clients[0]']],
  );
});

test('refuses the demo’s published secret on a server others can reach, and takes it on localhost', async (t) => {
  const machine = (secret: string) =>
    clients(
      `  - { client_id: ops, client_secret: ${secret}, grant_types: [client_credentials], redirect_uris: [], scope: admin }`,
    );
  const published = 'demo-admin-secret-for-local-development-only';
  const problems = await problemsOf(machine(published));
  t.deepEqual(
    problems.map((p) => p.path),
    ['clients[0].client_secret'],
  );
  t.regex(problems[0]?.message ?? '', /published with Postern's demo/);
  t.deepEqual(await problemsOf(machine(SECRET)), []);
  const local = await problemsOf(
    acmePool(
      '    id: localhost\n    origins: ["http://localhost:3000"]',
      `clients:\n  - { client_id: ops, client_secret: ${published}, grant_types: [client_credentials], redirect_uris: [], scope: admin }`,
    ),
    { server: 'public_url: http://localhost:3000\n' },
  );
  t.deepEqual(local, [], 'the demo on localhost keeps working out of the box');
});

test('reserves the account page’s client id', async (t) => {
  const problems = await problemsOf(
    clients(
      '  - { client_id: postern-account, token_endpoint_auth_method: none, redirect_uris: [https://app.acme.example/cb] }',
    ),
  );
  t.deepEqual(
    problems.map((p) => [p.path, p.message]),
    [
      [
        'clients[0].client_id',
        '"postern-account" is reserved for Postern\'s account page; choose another id',
      ],
    ],
  );
});

const redirectCases: Array<[string, string, RegExp | undefined]> = [
  ['relative', '/callback', /not an absolute URI/],
  ['plain http on a public host', 'http://app.acme.example/cb', /must use https/],
  ['with a fragment', 'https://app.acme.example/cb#x', /fragment/],
  ['with a wildcard', 'https://*.acme.example/cb', /wildcard/],
  ['http on localhost', 'http://localhost:8080/cb', undefined],
  ['http on 127.0.0.1', 'http://127.0.0.1:8080/cb', undefined],
  ['http on [::1]', 'http://[::1]:8080/cb', undefined],
];
for (const [what, uri, message] of redirectCases) {
  test(`${message ? 'refuses' : 'accepts'} a redirect URI ${what}`, async (t) => {
    const problems = await problemsOf(
      clients(`  - client_id: web\n    client_secret: ${SECRET}\n    redirect_uris: ["${uri}"]`),
    );
    if (!message) return t.deepEqual(problems, []);
    t.is(problems.length, 1, JSON.stringify(problems));
    t.is(problems[0]?.path, 'clients[0].redirect_uris[0]');
    t.regex(problems[0]?.message ?? '', message);
  });
}

test('needs a secret for a confidential client, and none for a public one', async (t) => {
  const problems = await problemsOf(
    clients(
      '  - client_id: web\n    redirect_uris: [https://app.acme.example/cb]\n' +
        `  - client_id: spa\n    token_endpoint_auth_method: none\n    client_secret: ${SECRET}\n    redirect_uris: [https://app.acme.example/cb]\n` +
        '  - client_id: robot\n    token_endpoint_auth_method: none\n    grant_types: [client_credentials]',
    ),
  );
  t.deepEqual(
    problems.map((p) => p.path),
    ['clients[0].client_secret', 'clients[1].client_secret', 'clients[2].grant_types'],
  );
});

test('names an unset ${VAR} without a default, and uses defaults and set variables', async (t) => {
  const pool = clients(
    '  - client_id: web\n    client_secret: ${ACME_WEB_SECRET}\n    redirect_uris: ["${APP_URL:-https://app.acme.example}/cb"]',
  );
  const unset = await problemsOf(pool);
  t.deepEqual(
    unset.map((p) => [p.path, p.line]),
    [['clients[0].client_secret', 7]],
  );
  t.regex(unset[0]?.message ?? '', /\$\{ACME_WEB_SECRET\} is not set and has no default/);

  const config = await writeConfigDir({ server: ACME_SERVER, pools: { acme: pool } });
  const { config: loaded } = await readConfig({
    dir: config.dir,
    env: { ACME_WEB_SECRET: SECRET, APP_URL: 'https://web.acme.example' },
  });
  await config.remove();
  t.is(loaded?.pools[0]?.clients[0]?.client_secret, SECRET);
  t.deepEqual(loaded?.pools[0]?.clients[0]?.redirect_uris, ['https://web.acme.example/cb']);
});

test('refuses pool ids that are not URL-safe or shadow a server route', async (t) => {
  const config = await writeConfigDir({
    server: ACME_SERVER,
    pools: {
      Acme_Corp: withRp('acme.example'),
      healthz: withRp('acme.example'),
      readyz: withRp('acme.example'),
      metrics: withRp('acme.example'),
      assets: withRp('acme.example'),
      '-acme': withRp('acme.example'),
    },
  });
  const { problems } = await readConfig({ dir: config.dir, env: {} });
  await config.remove();
  t.deepEqual(
    problems.map((p) => [p.file.split('/').pop(), p.message.split(' (')[0]]),
    [
      ['-acme.yaml', 'pool id "-acme"'],
      ['Acme_Corp.yaml', 'pool id "Acme_Corp"'],
      ['assets.yaml', 'pool id "assets"'],
      ['healthz.yaml', 'pool id "healthz"'],
      ['metrics.yaml', 'pool id "metrics"'],
      ['readyz.yaml', 'pool id "readyz"'],
    ],
  );
});

test('lets the environment override the server file and names the variable on a bad value', async (t) => {
  const config = await writeConfigDir({ server: 'port: 3000\n', pools: { acme: withRp('acme.example') } });
  const env = { PUBLIC_URL: 'https://id.acme.example', PORT: '4000', REDIS_URL: 'redis://r:6379' };
  const { config: loaded } = await readConfig({ dir: config.dir, env });
  t.is(loaded?.server.port, 4000);
  t.is(loaded?.server.redis.url, 'redis://r:6379');
  const bad = await readConfig({ dir: config.dir, env: { ...env, PORT: 'eighty' } });
  await config.remove();
  t.deepEqual(
    bad.problems.map((p) => [p.file, p.path]),
    [['environment PORT', 'port']],
  );
});

test('requires the secret with a database URL and shared storage for several workers', async (t) => {
  const problems = await problemsOf(withRp('acme.example'), {
    server: `${ACME_SERVER}database:\n  url: postgres://db/postern\nworkers: 4\n`,
  });
  t.deepEqual(
    problems.map((p) => p.path),
    ['secret', 'workers'],
  );
});

test('refuses a public URL that is not a secure origin', async (t) => {
  const problems = await problemsOf(withRp('acme.example'), {
    server: 'public_url: http://id.acme.example/idp\n',
  });
  t.is(problems[0]?.path, 'public_url');
  t.regex(problems[0]?.message ?? '', /exactly scheme/);
});

test('reports every problem of every file in one run, with file, line and key path', async (t) => {
  const config = await writeConfigDir({
    server: 'public_url: https://id.acme.example\nport: 99999\n',
    pools: {
      acme: 'passkeys:\n  mode: smrt\n  rp:\n    id: co.uk\n    origins: ["http://evil.example"]\n',
      broken: 'passkeys: [\n',
    },
  });
  const { problems } = await readConfig({ dir: config.dir, env: {} });
  await config.remove();
  const lines = problems.map(formatProblem).map((line) => line.replace(/^.*\/(?=[^/]+\.yaml)/, ''));
  t.deepEqual(lines, [
    'acme.yaml:2:9 passkeys.mode: must be one of: smart, classic',
    'acme.yaml:4:9 passkeys.rp.id: "co.uk" is a public suffix; use a domain registered under it',
    'acme.yaml:5:15 passkeys.rp.origins[0]: "http://evil.example" must use https (http is allowed only for localhost)',
    lines[3] ?? '',
    'postern.yaml:2:7 port: must be at most 65535',
  ]);
  t.regex(lines[3] ?? '', /^broken\.yaml:\d+:\d+ YAML: /);
});
