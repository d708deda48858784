/**
 * Email codes: proving an email for sign-up, and signing in where the pool
 * lists email_otp as a first factor. Sending answers the same for every
 * email (only the mailbox learns whether an account exists): a code is always
 * issued, usable only when it has a purpose, and mailed after the response.
 */
import { PosternError } from '../../errors.ts';
import { issueCode, redeemCode } from '../../factors/email-code/email-code-store.ts';
import { emailCodeFactor } from '../assurance.ts';
import { type Answer, type InteractionScope, type LoginKit, normaliseEmail } from '../login-kit.ts';
import type { Progress } from '../progress.ts';

export function emailCodeCalls(kit: LoginKit) {
  const { durable, ephemeral, mailer } = kit.deps;

  function deliverCode(scope: InteractionScope, email: string, code: string, purpose: 'sign_in' | 'sign_up') {
    const name = scope.pool.display_name;
    const message =
      purpose === 'sign_in'
        ? { subject: `Your ${name} sign-in code: ${code}`, intro: `Use this code to sign in to ${name}:` }
        : {
            subject: `Confirm your email for ${name}: ${code}`,
            intro: `Use this code to create your ${name} account:`,
          };
    // After the response is written: a mail server's work must not make known
    // and unknown emails answer at different speeds.
    setImmediate(() => {
      mailer
        .send({
          to: email,
          subject: message.subject,
          text: `${message.intro}\n\n    ${code}\n\nIt expires in 10 minutes. If you did not ask for it, ignore this message.\n`,
        })
        .catch((error: unknown) => scope.log.error({ err: error }, 'sending the email code failed'));
    });
  }

  return {
    async sendEmailCode(scope: InteractionScope, { email: given }: { email?: string }): Promise<Answer> {
      const progress = await kit.loadProgress(scope);
      if (progress.userId || progress.signup) throw kit.notNow('Sending a code');
      const email = given !== undefined ? normaliseEmail(given) : progress.email;
      if (!email) throw new PosternError(400, 'invalid_request', 'Enter your email address first.');
      await kit.limit(scope, 'email_code_send_address', `${scope.pool.id}:${email}`);
      await kit.limit(scope, 'email_code_send_ip', scope.ip);

      // Same answer, same work, whether the account exists or not; only the mailbox learns.
      const user = await durable.users.findByEmail(scope.pool.id, email);
      const purpose = user
        ? scope.pool.authentication.first_factor.includes('email_otp')
          ? 'sign_in'
          : undefined
        : scope.pool.registration.mode === 'open'
          ? 'sign_up'
          : undefined;
      // A code is always issued, the same work either way; only a real purpose makes it usable and mails it.
      const code = await issueCode(ephemeral, {
        poolId: scope.pool.id,
        uid: scope.interaction.uid,
        email,
        usable: purpose !== undefined,
      });
      if (purpose) deliverCode(scope, email, code, purpose);
      const next: Progress = { ...progress, email, factors: [] };
      const answer = await kit.advance(scope, next);
      return 'step' in answer ? { ...answer, code_sent: true } : answer;
    },

    async verifyEmailCode(scope: InteractionScope, { code }: { code: string }): Promise<Answer> {
      await kit.limit(scope, 'email_code_verify_ip', scope.ip);
      const progress = await kit.loadProgress(scope);
      if (progress.userId || progress.signup) throw kit.notNow('Entering a code');
      const check = await redeemCode(ephemeral, { poolId: scope.pool.id, uid: scope.interaction.uid, code });
      if (!check.ok) {
        scope.log.info({ reason: check.reason }, 'email code refused');
        await kit.audit(scope, 'sign_in', 'failure', {
          detail: { method: 'email_otp', reason: check.reason },
        });
        if (check.reason === 'too_many_tries') {
          throw new PosternError(400, 'code_locked', 'Too many wrong codes. Ask for a new code.');
        }
        throw new PosternError(400, 'invalid_code', 'That code is not valid or has expired.', {
          detail: check.reason,
        });
      }
      const factors = [emailCodeFactor(Math.floor(Date.now() / 1000))];
      const user = await durable.users.findByEmail(scope.pool.id, check.email);
      if (user && !scope.pool.authentication.first_factor.includes('email_otp')) {
        // A sign-up code, and the account appeared meanwhile: a code is not a way in to this pool.
        await kit.audit(scope, 'sign_in', 'failure', {
          userId: user.id,
          detail: { method: 'email_otp', reason: 'email codes are not a first factor here' },
        });
        throw new PosternError(400, 'invalid_code', 'That code is not valid or has expired.');
      }
      if (user) return kit.advance(scope, { ...progress, email: user.email, userId: user.id, factors });
      return kit.advance(scope, { ...progress, email: check.email, signup: { email: check.email }, factors });
    },
  };
}
