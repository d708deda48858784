/**
 * Email codes: proving an email for sign-up, signing in where the pool lists
 * email_otp as a first factor, and proving the email again before a passkey
 * is enrolled to meet a requirement (`prove_email`: no factor, only proof).
 * Sending answers the same for every email (only the mailbox learns whether
 * an account exists): a code is always issued, usable only when it has a
 * purpose, and mailed after the response. An account that codes cannot sign
 * in to is told so in its mailbox instead, so its owner is not left waiting
 * for a code that never comes.
 *
 * Limits, each counted only once the one before it allowed the request (a
 * request refused per client address spends no email's budget):
 * - sending: per client address; per email and browser (a known device of
 *   the account, else the client address); per email across the server per
 *   day, for browsers that never signed in to it (the cap on mail bombing).
 * - verifying: per client address; per account and day, wrong codes only,
 *   with a known device's allowance apart. Each code also allows 5 tries.
 */
import { normaliseEmail } from '../../accounts/email.ts';
import { errorOf, PosternError } from '../../errors.ts';
import type { LoginContext } from '../../interactions/login-context.ts';
import { notNow } from '../../interactions/login-errors.ts';
import type { Step } from '../../interactions/next-step.ts';
import type { Answer } from '../../interactions/present-step.ts';
import type { CompletedFactor, Progress } from '../../interactions/progress.ts';
import { createSignUpAccount } from '../../interactions/sign-up-account.ts';
import { type CodeCheck, issueCode, redeemCode } from '../email-code/email-code-store.ts';
import { newUserHandle } from '../passkey/passkey-enrollment.ts';
import { refusal } from '../refusal-codes.ts';

export type Purpose = 'sign_in' | 'sign_up' | 'verify' | 'account_exists';

const proveEmailStep = (step: Step) => step.step === 'second_factor' && step.reason === 'prove_email';

/** What a code (or link) of each purpose lets the user do. */
const PURPOSE_TEXT: Record<Exclude<Purpose, 'account_exists'>, (name: string) => string> = {
  sign_in: (name) => `to sign in to ${name}`,
  sign_up: (name) => `to create your ${name} account`,
  verify: (name) => `to confirm your email before adding a passkey to your ${name} account`,
};

/** The mail for each purpose; `verify` is also the enrolment link's (src/enrollment/). */
export const CODE_MESSAGES: Record<
  Purpose,
  (name: string, code: string) => { subject: string; text: string }
> = {
  sign_in: (name, code) => ({
    subject: `Your ${name} sign-in code: ${code}`,
    text: codeText(`Use this code ${PURPOSE_TEXT.sign_in(name)}:`, code),
  }),
  sign_up: (name, code) => ({
    subject: `Confirm your email for ${name}: ${code}`,
    text: codeText(`Use this code ${PURPOSE_TEXT.sign_up(name)}:`, code),
  }),
  verify: (name, code) => ({
    subject: `Confirm it is you at ${name}: ${code}`,
    text: codeText(`Use this code ${PURPOSE_TEXT.verify(name)}:`, code),
  }),
  account_exists: (name) => ({
    subject: `You already have a ${name} account`,
    text: `Someone, probably you, asked to create a ${name} account with this email. You already have one, so no code was sent: sign in with your passkey instead.\n\nIf you lost your passkey, sign in another way you set up (such as a recovery code), or ask ${name}'s support for help. If it was not you, ignore this message.\n`,
  }),
};

/** The error a refused code answers with: locked after too many tries, else not valid (whatever the reason). */
export function codeRefused(reason: Exclude<CodeCheck, { ok: true }>['reason']): PosternError {
  if (reason === 'too_many_tries') return errorOf('code_locked');
  return errorOf('invalid_code', { description: 'That code is not valid or has expired.', detail: reason });
}

/** The factor a redeemed sign-in code completes. */
export function emailCodeFactor(at: number): CompletedFactor {
  return { method: 'email_otp', amr: ['otp'], multiFactor: false, at };
}

function codeText(intro: string, code: string): string {
  return `${intro}\n\n    ${code}\n\nIt expires in 10 minutes. If you did not ask for it, ignore this message.\n`;
}

/** What a link mail says it is for. */
const LINK_SUBJECTS: Record<Exclude<Purpose, 'account_exists'>, (name: string) => string> = {
  sign_in: (name) => `Sign in to ${name}`,
  sign_up: (name) => `Confirm your email for ${name}`,
  verify: (name) => `Confirm it is you at ${name}`,
};

/**
 * The link that carries the code (`authentication.email_otp.delivery: link |
 * both`): the interaction's email-link page, with the code in the fragment,
 * which no server sees. Opened in the browser that asked, it enters the code
 * there; anywhere else it only shows the code (src/interactions/email-link-page.ts).
 */
const emailLinkOf = (publicUrl: string, poolId: string, uid: string, code: string) =>
  `${publicUrl}/${poolId}/interaction/${uid}/email-link#code=${code}`;

function mailFor(
  ctx: LoginContext,
  code: string,
  purpose: Purpose,
): { subject: string; text: string; link?: string } {
  const name = ctx.pool.display_name;
  const message = CODE_MESSAGES[purpose](name, code);
  const { delivery } = ctx.pool.authentication.email_otp;
  if (delivery === 'code' || purpose === 'account_exists') return message;
  const link = emailLinkOf(ctx.kit.deps.publicUrl, ctx.pool.id, ctx.scope.interaction.uid, code);
  const intro = `Open this link ${PURPOSE_TEXT[purpose](name)}:`;
  return {
    subject: LINK_SUBJECTS[purpose](name),
    text: [
      intro,
      '',
      `    ${link}`,
      '',
      'Open it in the browser where you asked for it. It works once and expires in 10 minutes.',
      ...(delivery === 'both' ? ['', `Or enter this code there: ${code}`] : []),
      '',
      'If you did not ask for it, ignore this message.',
      '',
    ].join('\n'),
    link,
  };
}

function deliver(ctx: LoginContext, email: string, code: string, purpose: Purpose) {
  const message = mailFor(ctx, code, purpose);
  const { mailer } = ctx.kit.deps;
  // After the response is written: a mail server's work must not make known
  // and unknown emails answer at different speeds.
  setImmediate(() => {
    mailer
      // The code rides along so that, without SMTP, the log shows it (an account_exists mail has none).
      .send({ to: email, ...message, ...(purpose === 'account_exists' ? {} : { code }) })
      .catch((error: unknown) => ctx.log.error({ err: error }, 'sending the email code failed'));
  });
}

/** The browser an email's limits count under: its known-device id for the account, else its address. */
function browserOf(ctx: LoginContext, email: string): { key: string; known: boolean } {
  const device = ctx.knownDeviceOf(email);
  return device ? { key: `device:${device}`, known: true } : { key: `ip:${ctx.scope.ip}`, known: false };
}

async function limitSending(ctx: LoginContext, email: string) {
  await ctx.limit('email_code_send_ip', ctx.scope.ip);
  const browser = browserOf(ctx, email);
  await ctx.limit('email_code_send_pair', `${ctx.pool.id}:${email}|${browser.key}`);
  if (!browser.known) await ctx.limit('email_code_send_daily', email);
}

/** The key an account's wrong codes count under, for this browser. */
function wrongCodesKey(ctx: LoginContext, email: string): string {
  const browser = browserOf(ctx, email);
  return `${ctx.pool.id}:${email}${browser.known ? `|${browser.key}` : ''}`;
}

/** What a code mailed to `email` at this step is for; undefined: an unusable code, mailed to no one. */
async function purposeOf(ctx: LoginContext, email: string): Promise<Purpose | undefined> {
  const { pool } = ctx;
  const user = await ctx.kit.deps.durable.users.findByEmail(pool.id, email);
  if (!user) return pool.registration.mode === 'open' ? 'sign_up' : undefined;
  if (pool.authentication.first_factor.includes('email_otp')) return 'sign_in';
  // Someone asked to sign up with an email that has an account codes cannot sign in to.
  return pool.registration.mode === 'open' ? 'account_exists' : undefined;
}

export const emailCodeCalls = {
  async sendEmailCode(ctx: LoginContext, { email: given }: { email?: string }): Promise<Answer> {
    const { progress, pool } = ctx;
    const { ephemeral } = ctx.kit.deps;
    const uid = ctx.scope.interaction.uid;
    if (progress.signup) throw notNow('Sending a code');
    if (progress.userId) {
      // Signed in by a first factor: only the proof of the email before a required passkey.
      await ctx.require(proveEmailStep, 'Sending a code');
      const email = progress.email;
      if (!email || (given !== undefined && normaliseEmail(given) !== email))
        throw notNow('Sending a code to another email');
      await limitSending(ctx, email);
      const code = await issueCode(ephemeral, { poolId: pool.id, uid, email, now: ctx.kit.clock() });
      deliver(ctx, email, code, 'verify');
      return ctx.advance({ ...progress, codeSent: true }, { code_sent: true });
    }

    const email = given !== undefined ? normaliseEmail(given) : progress.email;
    if (!email) throw new PosternError(400, 'invalid_request', 'Enter your email address first.');
    // A step-up is for the signed-in user: the code goes to their email only.
    if (progress.sessionUserId && email !== progress.email) throw notNow('Sending a code to another email');
    await limitSending(ctx, email);

    // Same answer, same work, whether the account exists or not; only the mailbox learns.
    const purpose = await purposeOf(ctx, email);
    // A code is always issued; only a sign-in or sign-up makes it usable.
    const code = await issueCode(ephemeral, {
      poolId: pool.id,
      uid,
      email,
      usable: purpose === 'sign_in' || purpose === 'sign_up',
      now: ctx.kit.clock(),
    });
    if (purpose) deliver(ctx, email, code, purpose);
    const next: Progress = { ...progress, email, factors: [], codeSent: true };
    return ctx.advance(next, { code_sent: true });
  },

  async verifyEmailCode(ctx: LoginContext, { code }: { code: string }): Promise<Answer> {
    await ctx.limit('email_code_verify_ip', ctx.scope.ip);
    const { progress, pool } = ctx;
    const { durable, ephemeral } = ctx.kit.deps;
    if (progress.signup) throw notNow('Entering a code');
    if (progress.userId) await ctx.require(proveEmailStep, 'Entering a code');
    const wrongKey = progress.email ? wrongCodesKey(ctx, progress.email) : undefined;
    if (wrongKey) await ctx.checkLimit('email_code_wrong_daily', wrongKey);

    const check = await redeemCode(ephemeral, {
      poolId: pool.id,
      uid: ctx.scope.interaction.uid,
      code,
      now: ctx.kit.clock(),
    });
    if (!check.ok) {
      ctx.log.info(refusal(check.reason), 'email code refused');
      ctx.audit('sign_in', 'failure', {
        userId: progress.userId,
        detail: { method: 'email_otp', ...refusal(check.reason) },
      });
      if (wrongKey && check.reason === 'wrong_code')
        await ctx.countFailure('email_code_wrong_daily', wrongKey);
      throw codeRefused(check.reason);
    }
    const { codeSent: _sent, ...rest } = progress;

    if (progress.userId) {
      // prove_email: the code was mailed to this user's email at this step.
      if (check.email !== progress.email) throw notNow('Entering a code');
      ctx.audit('email_proven', 'success', { userId: progress.userId });
      return ctx.advance({ ...rest, emailProven: true });
    }

    const factors = [emailCodeFactor(ctx.now())];
    const user = await durable.users.findByEmail(pool.id, check.email);
    if (user && !pool.authentication.first_factor.includes('email_otp')) {
      // A sign-up code, and the account appeared meanwhile: a code is not a way in to this pool.
      ctx.audit('sign_in', 'failure', {
        userId: user.id,
        detail: {
          method: 'email_otp',
          ...refusal('email_code_not_first_factor', 'email codes are not a first factor here'),
        },
      });
      throw new PosternError(400, 'invalid_code', 'That code is not valid or has expired.');
    }
    if (user) return ctx.advance({ ...rest, email: user.email, userId: user.id, factors });
    // The sign-up's one WebAuthn user handle, made here once: creation options asked for
    // at once then all read the same one (progress.ts, `signup.webauthnUserId`).
    const signup = { email: check.email, webauthnUserId: newUserHandle() };
    const next: Progress = { ...rest, email: check.email, signup, factors };
    const step = await ctx.decide(next);
    if (step.step === 'enroll' && step.reason === 'signup' && step.methods.length === 0) {
      // Nothing to enrol (email codes only, no passkeys): the proven email is the account.
      const { signup: _done, ...signedUp } = next;
      return ctx.advance({ ...signedUp, userId: await createSignUpAccount(ctx, signup) });
    }
    return ctx.advance(next);
  },
};
