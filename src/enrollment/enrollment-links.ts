/**
 * Issuing enrolment links: a one-time, expiring URL an operator sends a user
 * (the admin API, `postern users create`) so they can create a passkey for
 * their existing account. The token is 32 random bytes in the URL; only its
 * hash is stored (src/storage/postgres/enrollment-link-repository.ts), and a
 * new link replaces the user's previous one. The link is also mailed to the
 * user: the page it opens proves the email with a one-time code before any
 * passkey is added (./enrollment-flow.ts), so the link alone, forwarded or
 * leaked, adds nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PoolConfig } from '../config/types.ts';
import type { Mailer } from '../email/mailer.ts';
import type { Logger } from '../logging/create-logger.ts';
import type { DurableStore, User } from '../storage/types.ts';

/** The stored form of a link's token: its SHA-256, hex (the token has 256 random bits). */
export const tokenHashOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/** A token as links carry it: 43 base64url characters. */
export const LINK_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface IssuedLink {
  url: string;
  expires_at: string;
  /** Whether the mail went out (false without SMTP, or when sending failed); the URL works either way. */
  mailed: boolean;
}

export interface EnrollmentLinkDeps {
  durable: Pick<DurableStore, 'enrollmentLinks'>;
  mailer: Mailer;
  logger: Logger;
  /** The server's public URL; links are `{public_url}/{pool}/enroll/{token}`. */
  publicUrl: string;
  /** Whether the mailer delivers mail (SMTP_URL is set) rather than writing it to the log. */
  mailDelivers: boolean;
  /** (Optional) Milliseconds since the epoch. Defaults to the system clock. */
  clock?: () => number;
}

export function createEnrollmentLinks({
  durable,
  mailer,
  logger,
  publicUrl,
  mailDelivers,
  clock = Date.now,
}: EnrollmentLinkDeps) {
  return {
    /**
     * A new link for `user`, replacing any earlier one, mailed to them.
     * Undefined when the user no longer exists. A mail that fails is logged
     * and said in `mailed`: the caller still has the URL to pass on.
     */
    async issue(
      pool: PoolConfig,
      user: User,
      { createdBy }: { createdBy: string },
    ): Promise<IssuedLink | undefined> {
      const token = randomBytes(32).toString('base64url');
      const expiresAt = new Date(clock() + pool.registration.enrollment_link_ttl * 1000);
      const issued = await durable.enrollmentLinks.issue({
        poolId: pool.id,
        userId: user.id,
        tokenHash: tokenHashOf(token),
        expiresAt,
        createdBy,
      });
      if (!issued) return undefined;
      const url = `${publicUrl}/${pool.id}/enroll/${token}`;
      let mailed = mailDelivers;
      try {
        await mailer.send({
          to: user.email,
          subject: `Set up your passkey for ${pool.display_name}`,
          text: [
            `You have been invited to sign in to ${pool.display_name} with a passkey.`,
            '',
            `Open this link to create your passkey (it works once, until ${expiresAt.toUTCString()}):`,
            url,
            '',
            'We will email you a code on the way to check that this address is yours.',
            'If you did not expect this, ignore this message.',
          ].join('\n'),
          link: url,
        });
      } catch (error) {
        mailed = false;
        logger.warn({ err: error, pool: pool.id, user: user.id }, 'the enrolment link could not be mailed');
      }
      return { url, expires_at: expiresAt.toISOString(), mailed };
    },
  };
}

export type EnrollmentLinks = ReturnType<typeof createEnrollmentLinks>;
