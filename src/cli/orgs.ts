/**
 * `postern orgs …`: a pool's organizations from the command line, through
 * the same service as the admin API (src/organizations/organization-service.ts),
 * so the same input is refused with the same sentence and every write lands
 * in the audit trail, as `via: cli`.
 *
 * Output is plain text, one line per item, fields separated by tabs (a name
 * holds no control characters, so no tab): an organization is
 * `id slug passkey_login=on|off require_mfa=true|false allowed_first_factors=a,b|pool name`,
 * a member `user_id email added_at`.
 *
 * Against the embedded default it needs the server stopped (one process owns
 * the embedded database); against PostgreSQL and Redis it runs beside
 * running servers, and a member it removes is signed out of them too.
 */
import { createAuditTrail } from '../accounts/audit-trail.ts';
import { normaliseEmail } from '../accounts/email.ts';
import { PosternError } from '../errors.ts';
import { emailField } from '../http/api-fields.ts';
import type { Logger } from '../logging/create-logger.ts';
import {
  createOrganizationService,
  type OrganizationScope,
  type OrganizationView,
} from '../organizations/organization-service.ts';
import { StoreUnavailableError } from '../storage/errors.ts';
import { CommandError, EXIT } from './exit-codes.ts';
import { assertMigrated, noSuchPool, openRuntime, type Runtime } from './open-runtime.ts';

export type OrgsCommand =
  | 'create'
  | 'list'
  | 'update'
  | 'delete'
  | 'add-member'
  | 'remove-member'
  | 'members';

/** The options of every `orgs` command, as commander parses them (each command takes its own). */
export interface OrgsOptions {
  pool: string;
  /** The organization acted on: its id or slug. */
  org?: string;
  slug?: string;
  name?: string;
  passkeyLogin?: string;
  /** `--require-mfa` true, `--no-require-mfa` false. */
  requireMfa?: boolean;
  /** `a,b`; false from `--no-allowed-first-factors` (back to the pool's). */
  allowedFirstFactors?: string | false;
  email?: string;
}

/** One page of everything: the lists are read whole. */
const PAGE = 200;

/** An organization as one line. */
function organizationLine(organization: OrganizationView): string {
  return [
    organization.id,
    organization.slug,
    `passkey_login=${organization.passkey_login}`,
    `require_mfa=${organization.require_mfa}`,
    `allowed_first_factors=${organization.allowed_first_factors?.join(',') ?? 'pool'}`,
    organization.name,
  ].join('\t');
}

/** The admin API's body of what the options set; the service validates it. */
function bodyOf(options: OrgsOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (options.slug !== undefined) body.slug = options.slug;
  if (options.name !== undefined) body.name = options.name;
  if (options.passkeyLogin !== undefined) body.passkey_login = options.passkeyLogin;
  if (options.requireMfa !== undefined) body.require_mfa = options.requireMfa;
  if (options.allowedFirstFactors === false) body.allowed_first_factors = null;
  else if (options.allowedFirstFactors !== undefined)
    body.allowed_first_factors = options.allowedFirstFactors.split(',').map((factor) => factor.trim());
  return body;
}

function required(value: string | undefined, option: string): string {
  if (value === undefined) throw new CommandError(`${option} is required`, EXIT.invalid);
  return value;
}

/**
 * Runs `postern orgs <command>` on `options.pool`.
 * @returns the exit code.
 * @throws {CommandError} for bad input, an unknown pool, organization or user (1), or a store that went away (2).
 */
export async function orgs(
  configDir: string | undefined,
  command: OrgsCommand,
  options: OrgsOptions,
  logger: Logger,
  out: (line: string) => void,
): Promise<number> {
  const email = options.email === undefined ? undefined : emailField.safeParse(options.email);
  if (email && !email.success)
    throw new CommandError(`"${options.email}" is not an email address`, EXIT.invalid);

  const runtime = await openRuntime(configDir, logger);
  const pool = runtime.config.pools.find((candidate) => candidate.id === options.pool);
  const scope: OrganizationScope | undefined = pool && {
    pool,
    log: logger,
    audit: createAuditTrail(runtime.durable.auditEvents, {
      poolId: pool.id,
      ip: null,
      userAgent: null,
      detail: { via: 'cli' },
    }),
  };
  try {
    if (!scope) throw noSuchPool(runtime.config, options.pool);
    await assertMigrated(runtime.durable);
    await run(runtime, scope, command, { ...options, email: email?.data }, out);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof PosternError) throw new CommandError(error.description, EXIT.invalid);
    if (error instanceof StoreUnavailableError)
      throw new CommandError(`${error.service} became unreachable: ${error.message}`, EXIT.unavailable);
    throw error;
  } finally {
    // Refusals are audited too, as the admin API's are.
    await scope?.audit.flush();
    await runtime.close();
  }
}

async function run(
  runtime: Runtime,
  scope: OrganizationScope,
  command: OrgsCommand,
  options: OrgsOptions,
  out: (line: string) => void,
): Promise<void> {
  const service = createOrganizationService(runtime);
  const org = () => required(options.org, '--org');

  /** The pool's user with `--email`. */
  const user = async () => {
    const address = required(options.email, '--email');
    const found = await runtime.durable.users.findByEmail(scope.pool.id, normaliseEmail(address));
    if (!found) throw new CommandError(`no user ${address} in pool ${scope.pool.id}`, EXIT.invalid);
    return found;
  };

  switch (command) {
    case 'create':
      out(organizationLine(await service.createOrganization(scope, bodyOf(options))));
      return;
    case 'update':
      out(organizationLine(await service.updateOrganization(scope, org(), bodyOf(options))));
      return;
    case 'list': {
      let cursor: string | undefined;
      do {
        const page = await service.listOrganizations(scope, { limit: PAGE, ...(cursor ? { cursor } : {}) });
        for (const organization of page.organizations) out(organizationLine(organization));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return;
    }
    case 'members': {
      let cursor: string | undefined;
      do {
        const page = await service.listMembers(scope, org(), { limit: PAGE, ...(cursor ? { cursor } : {}) });
        for (const member of page.members) out([member.user_id, member.email, member.added_at].join('\t'));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return;
    }
    case 'delete': {
      const organization = await service.getOrganization(scope, org());
      const { members_signed_out } = await service.deleteOrganization(scope, organization.id);
      out(
        `Deleted organization ${organization.slug} (${organization.id}); its ${members_signed_out} member(s) were signed out everywhere.`,
      );
      return;
    }
    case 'add-member': {
      const { added, membership } = await service.addMember(scope, org(), (await user()).id);
      const { email, organization } = membership;
      out(
        added
          ? `Added ${email} to ${organization.slug}.`
          : `${email} is already a member of ${organization.slug}.`,
      );
      return;
    }
    case 'remove-member': {
      const member = await user();
      const organization = await service.getOrganization(scope, org());
      const { signed_out } = await service.removeMember(scope, organization.id, member.id);
      out(
        `Removed ${member.email} from ${organization.slug}; signed out everywhere (${signed_out.sessions} session(s), ${signed_out.apps} app(s)).`,
      );
      return;
    }
  }
}
