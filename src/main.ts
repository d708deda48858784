/**
 * The `postern` command line (commander). Each command lives in src/cli/;
 * this file only parses arguments, sets up logging, and turns outcomes into
 * the exit codes of CONTRACT.md: 0 ok, 1 invalid input or configuration,
 * 2 a service unreachable.
 *
 * Only commander and the exit codes are imported up front. Each action
 * imports what it runs when it runs: loading the whole server (oidc-provider,
 * Koa, the storage clients) costs seconds of CPU, which `--help`,
 * `check-config` or `keys rotate` should not pay, nor a cluster's primary,
 * which only supervises.
 */
import cluster from 'node:cluster';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CommandError, EXIT } from './cli/exit-codes.ts';
import type { OrgsCommand, OrgsOptions } from './cli/orgs.ts';

const out = (line: string) => console.log(line);

function parseInteger(min: number, max: number) {
  return (value: string) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min || number > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return number;
  };
}

const configOption = () =>
  new Option('-c, --config <dir>', 'configuration directory (default: $POSTERN_CONFIG_DIR or ./config)');

const program = new Command('postern')
  .description('Postern: an OpenID Connect identity provider built around passkeys')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.invalid));

program
  .command('serve')
  .description('serve every pool in the configuration directory')
  .addOption(configOption())
  .addOption(
    new Option('-p, --port <port>', 'listen port (overrides PORT and the server file)').argParser(
      parseInteger(0, 65_535),
    ),
  )
  .addOption(
    new Option(
      '-w, --workers <n>',
      'worker processes, one per core (needs DATABASE_URL and REDIS_URL)',
    ).argParser(parseInteger(1, 64)),
  )
  .action(async (options: { config?: string; port?: number; workers?: number }) => {
    const { loadConfigOrFail } = await import('./cli/load-config-or-fail.ts');
    const { createLogger } = await import('./logging/create-logger.ts');
    const config = await loadConfigOrFail(options.config, { port: options.port });
    const logger = createLogger({ level: config.server.log_level });
    const workers = options.workers ?? config.server.workers;
    if (workers > 1 && (config.server.database.url === undefined || config.server.redis.url === undefined)) {
      throw new CommandError(
        '--workers above 1 needs DATABASE_URL and REDIS_URL: embedded storage belongs to one process',
        EXIT.invalid,
      );
    }
    if (workers > 1 && cluster.isPrimary) {
      const { superviseWorkers } = await import('./cli/cluster.ts');
      logger.info({ workers }, `starting ${workers} workers`);
      process.exitCode = await superviseWorkers(workers, logger);
      return;
    }
    const { createMetrics } = await import('./http/metrics.ts');
    const metrics = createMetrics({ processMetrics: true });
    // Before the server is loaded: clusterExposition also lets go of the IPC
    // channel, so a worker that fails even to load the server exits.
    const worker = cluster.isWorker ? await import('./cli/cluster.ts') : undefined;
    if (worker) metrics.exposition = worker.clusterExposition(metrics.registry);
    const { serve } = await import('./cli/serve.ts');
    await serve({ config, logger, port: options.port, metrics });
    worker?.reportWorkerReady();
  });

program
  .command('migrate')
  .description('apply database migrations (idempotent, safe to run concurrently)')
  .addOption(configOption())
  .action(async (options: { config?: string }) => {
    const { migrate } = await import('./cli/migrate.ts');
    const { createLogger } = await import('./logging/create-logger.ts');
    process.exitCode = await migrate(options.config, createLogger({ level: 'warn' }), out);
  });

program
  .command('check-config')
  .description('validate the server file and every pool file; print each problem; exit 1 on any')
  .addOption(configOption())
  .action(async (options: { config?: string }) => {
    const { checkConfig } = await import('./cli/check-config.ts');
    process.exitCode = await checkConfig(options.config, out);
  });

program
  .command('keys')
  .description('manage signing keys')
  .command('rotate')
  .description('add a new signing key for a pool; old keys stay published until tokens they signed expire')
  .requiredOption('--pool <id>', 'the pool id')
  .addOption(configOption())
  .action(async (options: { pool: string; config?: string }) => {
    const { rotateKeys } = await import('./cli/keys-rotate.ts');
    const { createLogger } = await import('./logging/create-logger.ts');
    process.exitCode = await rotateKeys(options.config, options.pool, createLogger({ level: 'warn' }), out);
  });

program
  .command('users')
  .description('manage users')
  .command('create')
  .description('create a user (if needed) and print a one-time enrolment link for their passkey, also mailed')
  .requiredOption('--pool <id>', 'the pool id')
  .requiredOption('--email <email>', "the user's email")
  .option('--name <name>', "the user's name, when creating them")
  .addOption(configOption())
  .action(async (options: { pool: string; email: string; name?: string; config?: string }) => {
    const { usersCreate } = await import('./cli/users-create.ts');
    const { createLogger } = await import('./logging/create-logger.ts');
    process.exitCode = await usersCreate(options.config, options, createLogger({ level: 'warn' }), out);
  });

const orgs = program
  .command('orgs')
  .description("manage a pool's organizations and their members (the admin API's organizations routes)");

/** Runs `orgs <command>`, loading it only then. */
const orgsAction = (command: OrgsCommand) => async (options: OrgsOptions & { config?: string }) => {
  const { orgs: runOrgs } = await import('./cli/orgs.ts');
  const { createLogger } = await import('./logging/create-logger.ts');
  process.exitCode = await runOrgs(options.config, command, options, createLogger({ level: 'warn' }), out);
};

/** The login settings `orgs create` and `orgs update` take. */
const withSettings = (command: Command) =>
  command
    .option('--passkey-login <on|off>', 'off: members sign in and enrol without passkeys (default on)')
    .option('--require-mfa', 'members always complete two factors')
    .option('--no-require-mfa', 'members complete two factors where the pool asks (the default)')
    .option('--allowed-first-factors <list>', "comma-separated: the pool's first factors members may use")
    .option('--no-allowed-first-factors', 'members may use every first factor of the pool (the default)');

withSettings(
  orgs
    .command('create')
    .description('create an organization; prints it')
    .requiredOption('--pool <id>', 'the pool id')
    .requiredOption('--slug <slug>', 'its handle: lowercase letters, digits and hyphens')
    .requiredOption('--name <name>', 'its name, as sign-in pages show it'),
)
  .addOption(configOption())
  .action(orgsAction('create'));

orgs
  .command('list')
  .description("print the pool's organizations, one a line")
  .requiredOption('--pool <id>', 'the pool id')
  .addOption(configOption())
  .action(orgsAction('list'));

withSettings(
  orgs
    .command('update')
    .description('change an organization; prints it')
    .requiredOption('--pool <id>', 'the pool id')
    .requiredOption('--org <id_or_slug>', 'the organization')
    .option('--slug <slug>', 'a new slug')
    .option('--name <name>', 'a new name'),
)
  .addOption(configOption())
  .action(orgsAction('update'));

orgs
  .command('delete')
  .description('sign its members out everywhere, then delete the organization (the users stay)')
  .requiredOption('--pool <id>', 'the pool id')
  .requiredOption('--org <id_or_slug>', 'the organization')
  .addOption(configOption())
  .action(orgsAction('delete'));

orgs
  .command('add-member')
  .description('make a user of the pool a member')
  .requiredOption('--pool <id>', 'the pool id')
  .requiredOption('--org <id_or_slug>', 'the organization')
  .requiredOption('--email <email>', "the user's email")
  .addOption(configOption())
  .action(orgsAction('add-member'));

orgs
  .command('remove-member')
  .description('remove a member, signing them out everywhere')
  .requiredOption('--pool <id>', 'the pool id')
  .requiredOption('--org <id_or_slug>', 'the organization')
  .requiredOption('--email <email>', "the user's email")
  .addOption(configOption())
  .action(orgsAction('remove-member'));

orgs
  .command('members')
  .description("print the organization's members, one a line")
  .requiredOption('--pool <id>', 'the pool id')
  .requiredOption('--org <id_or_slug>', 'the organization')
  .addOption(configOption())
  .action(orgsAction('members'));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommandError) {
    console.error(`postern: ${error.message}`);
    process.exitCode = error.exitCode;
  } else {
    console.error('postern: unexpected failure', error);
    process.exitCode = EXIT.invalid;
  }
}
