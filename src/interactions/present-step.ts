/**
 * A step as the interaction API answers it (CONTRACT.md, "Interaction API"):
 * the step and its methods, and what the page needs to show it.
 */
import { type PasskeyView, toPasskeyView } from '../accounts/passkey-view.ts';
import type { PoolConfig } from '../config/types.ts';
import type { Passkey } from '../storage/types.ts';
import type { Step } from './next-step.ts';
import type { Method, Progress } from './progress.ts';

export type StepAnswer = {
  step: Exclude<Step['step'], 'done' | 'unmet' | 'not_member'>;
  methods: Method[];
  optional?: boolean;
  reason?: string;
  email?: string;
  client: { id: string; name: string };
  scopes?: string[];
  code_sent?: true;
  /** With `code_sent`: how the code was mailed (pool `authentication.email_otp.delivery`). */
  code_delivery?: 'code' | 'link' | 'both';
  /** Shown once: the codes made when the user enrolled their first second factor. */
  recovery_codes?: string[];
  recovery_codes_remaining?: number;
  /** In the recovery step: the passkeys the user may remove. */
  passkeys?: PasskeyView[];
  /** The offer after a password sign-in: the page may first try to create the passkey without a prompt. */
  conditional_create?: true;
  /** The pool lets anyone sign up (a pool setting: it says nothing about the email). */
  signup_open?: true;
  /** Where this step lets the user choose a password: the shortest the pool accepts. */
  password_min_length?: number;
  /** The organization this login is for, once known (the page names it). */
  organization?: { id: string; name: string };
  /** The organization step: the user's organizations to choose from. */
  organizations?: { id: string; name: string }[];
};

/** What a call learned about the login, beyond progress, for its answer. */
export interface AnswerExtras {
  recovery_codes?: string[];
  recovery_codes_remaining?: number;
  code_sent?: true;
}

/** Where the browser goes next; `recovery_codes` when this very answer issued them (show them first). */
export type Answer = StepAnswer | ({ redirect_to: string } & AnswerExtras);

export interface Presentation {
  pool: PoolConfig;
  client: { id: string; name: string };
  /** The requested scopes, for the consent step. */
  scope: string;
  /** The request demands phr/phrh (a step-up): no "create an account" then. */
  stepUp: boolean;
  /** The user's passkeys, for the recovery step. */
  passkeys?: readonly Passkey[];
  /** The login's organization, once known. */
  organization?: { id: string; name: string };
}

export function presentStep(
  step: Exclude<Step, { step: 'done' | 'unmet' | 'not_member' }>,
  progress: Progress,
  { pool, client, scope, stepUp, passkeys, organization }: Presentation,
): StepAnswer {
  const answer: StepAnswer = {
    step: step.step,
    methods: 'methods' in step ? step.methods : [],
    client,
  };
  const email = progress.email ?? progress.signup?.email;
  if (email) answer.email = email;
  if ((step.step === 'first_factor' || step.step === 'second_factor') && step.reason)
    answer.reason = step.reason;
  // No "create an account" while a signed-in user steps up: they have one.
  if (
    (step.step === 'identify' || step.step === 'first_factor') &&
    pool.registration.mode === 'open' &&
    !stepUp
  )
    answer.signup_open = true;
  // A first factor step takes a pending code too where codes only prove a sign-up's email.
  if (
    progress.codeSent &&
    (step.step === 'first_factor' || ('methods' in step && step.methods.includes('email_otp')))
  )
    answer.code_sent = true;
  if (answer.code_sent) answer.code_delivery = pool.authentication.email_otp.delivery;
  if (step.step === 'enroll') {
    answer.optional = step.optional;
    answer.reason = step.reason;
    if (step.methods.includes('password'))
      answer.password_min_length = pool.authentication.password.min_length;
    if (step.reason === 'recovery' && passkeys) answer.passkeys = passkeys.map(toPasskeyView);
    if (step.reason === 'offer' && pool.enrollment.conditional_create && progress.passwordEntered)
      answer.conditional_create = true;
  }
  if (organization) answer.organization = { id: organization.id, name: organization.name };
  if (step.step === 'organization') answer.organizations = step.organizations;
  if (step.step === 'consent') answer.scopes = scope.split(' ').filter(Boolean);
  return answer;
}
