/**
 * `postern users create --pool ID --email E [--name N]`: makes sure the pool
 * has a user with that email (creating them when needed) and issues them a
 * one-time enrolment link, mailed to them and printed here, so an operator
 * can invite a user into an `invite_only` pool, or give an existing user a
 * new passkey after losing theirs. A new link replaces the user's previous one.
 */
import { normaliseEmail } from '../accounts/email.ts';
import { passkeysInUse } from '../accounts/passkey-policies.ts';
import { createMailer } from '../email/mailer.ts';
import { createEnrollmentLinks } from '../enrollment/enrollment-links.ts';
import { emailField, personNameField } from '../http/api-fields.ts';
import type { Logger } from '../logging/create-logger.ts';
import { passkeysAllowedFor } from '../organizations/org-policy.ts';
import { UniqueViolationError } from '../storage/errors.ts';
import type { DurableStore, User } from '../storage/types.ts';
import { CommandError, EXIT } from './exit-codes.ts';
import { assertMigrated, noSuchPool, openRuntime } from './open-runtime.ts';

export interface UsersCreateOptions {
  pool: string;
  email: string;
  name?: string;
}

export async function usersCreate(
  configDir: string | undefined,
  options: UsersCreateOptions,
  logger: Logger,
  out: (line: string) => void,
): Promise<number> {
  const email = emailField.safeParse(options.email);
  if (!email.success) throw new CommandError(`"${options.email}" is not an email address`, EXIT.invalid);
  const name = options.name === undefined ? undefined : personNameField.safeParse(options.name);
  if (name && !name.success)
    throw new CommandError(name.error.issues[0]?.message ?? 'bad name', EXIT.invalid);

  const runtime = await openRuntime(configDir, logger);
  const mailer = createMailer({
    smtpUrl: runtime.config.server.email.smtp_url,
    from: runtime.config.server.email.from,
    logger,
  });
  try {
    const pool = runtime.config.pools.find((candidate) => candidate.id === options.pool);
    if (!pool) throw noSuchPool(runtime.config, options.pool);
    if (!passkeysInUse(pool))
      throw new CommandError(
        `pool ${pool.id} does not use passkeys: an enrolment link would have nothing to enrol`,
        EXIT.invalid,
      );
    await assertMigrated(runtime.durable);
    const { user, created } = await findOrCreateUser(runtime.durable, pool.id, email.data, name?.data);
    const account = await runtime.durable.users.findAccount(pool.id, user.id);
    if (account && !passkeysAllowedFor(pool, account))
      throw new CommandError(
        `${user.email} belongs to an organization with passkey login off: an enrolment link would have nothing to enrol`,
        EXIT.invalid,
      );
    const links = createEnrollmentLinks({
      durable: runtime.durable,
      mailer,
      logger,
      publicUrl: runtime.config.server.public_url,
      mailDelivers: runtime.config.server.email.smtp_url !== undefined,
    });
    const link = await links.issue(pool, user, { createdBy: 'cli' });
    if (!link)
      throw new CommandError(`user ${user.email} was deleted meanwhile; run the command again`, EXIT.invalid);
    await runtime.durable.auditEvents.append({
      poolId: pool.id,
      event: 'enrollment_link_issued',
      outcome: 'success',
      userId: user.id,
      detail: { via: 'cli', user_created: created, expires_at: link.expires_at, mailed: link.mailed },
    });
    out(`${created ? 'Created' : 'Found'} user ${user.email} (${user.id}) in pool ${pool.id}.`);
    out(`Enrolment link, for one passkey, until ${link.expires_at}:`);
    out(link.url);
    if (!runtime.config.server.email.smtp_url)
      out('No SMTP_URL is set, so nothing was mailed: pass the link on yourself.');
    else if (link.mailed) out(`It was also mailed to ${user.email}.`);
    else out(`Mailing it to ${user.email} failed (see the log above): pass the link on yourself.`);
    return EXIT.ok;
  } finally {
    mailer.close();
    await runtime.close();
  }
}

async function findOrCreateUser(
  durable: DurableStore,
  poolId: string,
  email: string,
  name: string | undefined,
): Promise<{ user: User; created: boolean }> {
  const existing = await durable.users.findByEmail(poolId, normaliseEmail(email));
  if (existing) return { user: existing, created: false };
  try {
    return { user: await durable.users.create({ poolId, email, name: name ?? null }), created: true };
  } catch (error) {
    // Created meanwhile (a sign-up, another operator): that user is the one to invite.
    const raced =
      error instanceof UniqueViolationError &&
      (await durable.users.findByEmail(poolId, normaliseEmail(email)));
    if (raced) return { user: raced, created: false };
    throw error;
  }
}
