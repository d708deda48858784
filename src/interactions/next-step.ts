/**
 * The login state machine, as one pure function: given the pool's policy,
 * what this interaction has achieved, and what the account has enrolled, which
 * step comes next. Every route calls it after changing progress; nothing else
 * decides the order of steps. Table-tested in test/unit/interactions/.
 *
 *   identify ──► first_factor ──► (sign-up: enroll) ──► second_factor ──► (recovery: enroll)
 *            ──► (step-up: first_factor passkey) ──► enroll offer ──► consent ──► done
 *
 * - identify: nothing done yet. Smart pools also accept a passkey right away.
 * - first_factor: an email was given; any first factor the pool lists.
 * - organization: the first factor proved a user of several organizations,
 *   and the request named none: they pick the one this login is for. A
 *   login for an organization the user is not in (or a sign-up through
 *   one) ends there; the policy is already the organization's
 *   (src/organizations/org-policy.ts), which only tightens the pool's.
 * - sign-up: the email was proven but has no account; a passkey must be made
 *   unless the pool signs users in by email code alone.
 * - second_factor (second_factor_required): never; when_enrolled, if the user
 *   has a second factor; always. A passkey verified with UV counts as both
 *   factors when passkey_counts_as_two_factors. A user who must but has none
 *   enrolls a passkey in the same interaction. Recovery codes are the fallback
 *   of a passkey, not a factor of their own: they are offered beside a passkey
 *   the user could use, never instead of one (codes alone would turn every
 *   sign-in into a recovery and spend a code each time).
 * - a passkey enrolled to meet a requirement (a required second factor, a
 *   step-up) needs more than a password: the email is proven in this
 *   interaction first (an email code, or the sign-up's), so whoever learnt
 *   the password of an account that never finished enrolling cannot make its
 *   second factor their own.
 * - step-up (a request for phr/phrh): a passkey sign-in. A signed-in user
 *   without a passkey first proves it is them with another first factor
 *   they have, creates a passkey, then signs in with it; with no such
 *   factor the request cannot be met and the app is told so.
 * - enroll offer: after a sign-in without a passkey, a user without one is
 *   offered to create it (skippable).
 * - consent: for clients that are not first-party and lack a grant.
 */
import type { AccountFacts } from '../factors/factor.ts';
import { FACTOR_TRAITS } from '../factors/traits.ts';
import { type Acr, acrMeets } from '../oidc/acr.ts';
import { assessAssurance } from './assurance.ts';
import type { CompletedFactor, Method, Progress } from './progress.ts';

export type { AccountFacts } from '../factors/factor.ts';

export interface FlowPolicy {
  mode: 'smart' | 'classic';
  /**
   * Whether the pool uses passkeys (src/accounts/passkey-policies.ts). Where
   * not, the factor lists hold no passkey, and nothing offers or asks for one.
   */
  passkeys: boolean;
  firstFactors: readonly Method[];
  secondFactors: readonly Method[];
  secondFactorRequired: 'never' | 'when_enrolled' | 'always';
  passkeyCountsAsTwoFactors: boolean;
  /** Once a passkey can be the second factor, TOTP is not offered (pool `passkey_supersedes_totp`). */
  passkeySupersedesTotp: boolean;
  /** Offer a passkey after a sign-in without one: the pool's setting, and the user not asked recently. */
  offerPasskey: boolean;
  /**
   * (Optional) false: this user may not create a passkey (an organization of
   * theirs switched passkey login off), though the login may accept one.
   * Defaults to `passkeys`.
   */
  enrollPasskeys?: boolean;
  /**
   * (Optional) false: a step-up cannot be met, since the login's organization
   * does not accept a passkey as the first factor. Defaults to true.
   */
  passkeyStepUp?: boolean;
  /** What this request demands (acr_values, an essential acr claim, the client's default): only passkeys meet it. */
  requiredAcr?: Exclude<Acr, '0'>;
  /**
   * The login's organization, where it is still open once the user is
   * proven: they pick one of theirs, or the one the request names is not theirs.
   */
  organization?: { pick: readonly OrganizationChoice[] } | { outsider: true };
}

export interface OrganizationChoice {
  id: string;
  name: string;
}

export type EnrollReason = 'signup' | 'second_factor' | 'offer' | 'recovery' | 'step_up';

export type Step =
  | { step: 'identify'; methods: Method[] }
  /**
   * step_up: sign in with a passkey; step_up_enroll: prove who you are before
   * creating one; organization: the login's organization does not accept the
   * first factor used, so another one.
   */
  | { step: 'first_factor'; methods: Method[]; reason?: 'step_up' | 'step_up_enroll' | 'organization' }
  /** prove_email: an email code before a required passkey is enrolled (it adds no factor). */
  | { step: 'second_factor'; methods: Method[]; reason?: 'prove_email' }
  | { step: 'enroll'; methods: Method[]; optional: boolean; reason: EnrollReason }
  /** Which of their organizations this login is for. */
  | { step: 'organization'; organizations: OrganizationChoice[] }
  /** The login is for an organization this user is not a member of. */
  | { step: 'not_member' }
  | { step: 'consent' }
  /**
   * The request demands what this user cannot do here (OIDC
   * unmet_authentication_requirements); second_factor: a required second
   * factor they have none of, where no passkey can be made.
   */
  | { step: 'unmet'; reason?: 'second_factor' }
  | { step: 'done' };

export function nextStep(
  policy: FlowPolicy,
  progress: Progress,
  account: AccountFacts | undefined,
  { needsConsent }: { needsConsent: boolean },
): Step {
  const [first] = progress.factors;
  if (policy.organization && 'outsider' in policy.organization) return { step: 'not_member' };
  // Only a passkey meets a requested acr: without passkeys, nothing here can.
  if (policy.requiredAcr && (!policy.passkeys || policy.passkeyStepUp === false)) return { step: 'unmet' };
  const enrollPasskeys = policy.passkeys && policy.enrollPasskeys !== false;
  const firstFactors = policy.requiredAcr ? (['passkey'] as Method[]) : [...policy.firstFactors];

  if (progress.signup && !progress.userId) {
    // The email is proven; the account needs a way in, unless email codes are one.
    // No method at all (email codes only, no passkeys): the account is made as it is.
    const methods = policy.firstFactors.filter((method) => FACTOR_TRAITS[method].signUpCredential);
    const emailSuffices = policy.firstFactors.includes('email_otp');
    const fallback: Method[] = enrollPasskeys ? ['passkey'] : [];
    return {
      step: 'enroll',
      methods: methods.length > 0 ? methods : fallback,
      optional: emailSuffices,
      reason: 'signup',
    };
  }

  if (!first || !progress.userId || !account) {
    // A step-up for a signed-in user who has no passkey to step up with.
    if (policy.requiredAcr && !first && progress.sessionUserId && account?.passkeys === 0) {
      // In the pool's order.
      const methods = policy.firstFactors.filter((method) => FACTOR_TRAITS[method].stepUpProof(account));
      return methods.length > 0
        ? { step: 'first_factor', methods, reason: 'step_up_enroll' }
        : { step: 'unmet' };
    }
    if (!progress.email) {
      return {
        step: 'identify',
        methods: policy.mode === 'smart' && firstFactors.includes('passkey') ? ['passkey'] : [],
      };
    }
    return progress.organizationRefused
      ? { step: 'first_factor', methods: firstFactors, reason: 'organization' }
      : { step: 'first_factor', methods: firstFactors };
  }

  if (policy.organization) return { step: 'organization', organizations: [...policy.organization.pick] };

  const second = secondFactorStep(policy, progress.factors, account);
  if (second) return second.step === 'enroll' ? proveEmailBefore(second, progress) : second;

  // Before any step-up: a user who recovered may first make the passkey that step-up then asks for.
  if (progress.recovered && !progress.recoveryHandled && enrollPasskeys) {
    return { step: 'enroll', methods: ['passkey'], optional: true, reason: 'recovery' };
  }

  if (policy.requiredAcr && !acrMeets(assessAssurance(progress.factors).acr, policy.requiredAcr)) {
    if (account.passkeys > 0) return { step: 'first_factor', methods: ['passkey'], reason: 'step_up' };
    if (!enrollPasskeys) return { step: 'unmet' };
    return proveEmailBefore(
      { step: 'enroll', methods: ['passkey'], optional: false, reason: 'step_up' },
      progress,
    );
  }

  // Worth offering only where a passkey will be used: to sign in, or as a second factor the pool asks for.
  const usesPasskeys =
    policy.firstFactors.includes('passkey') ||
    (policy.secondFactors.includes('passkey') && policy.secondFactorRequired !== 'never');
  const usedPasskey = progress.factors.some((factor) => factor.method === 'passkey');
  if (
    policy.offerPasskey &&
    enrollPasskeys &&
    usesPasskeys &&
    account.passkeys === 0 &&
    !usedPasskey &&
    !progress.enrollDeclined &&
    !progress.recovered
  ) {
    return { step: 'enroll', methods: ['passkey'], optional: true, reason: 'offer' };
  }

  if (needsConsent) return { step: 'consent' };
  return { step: 'done' };
}

/**
 * A required enrolment, once the email is proven in this interaction: a
 * password alone must not be enough to make the account's passkey.
 */
function proveEmailBefore(enroll: Extract<Step, { step: 'enroll' }>, progress: Progress): Step {
  // An email code or a passkey in this interaction is more than a password alone.
  const proven =
    progress.emailProven || progress.factors.some((factor) => FACTOR_TRAITS[factor.method].provesEmail);
  return proven ? enroll : { step: 'second_factor', methods: ['email_otp'], reason: 'prove_email' };
}

/**
 * The second factor still owed, if any. A passkey after a passkey must be
 * another credential; a method never serves as both factors.
 */
function secondFactorStep(
  policy: FlowPolicy,
  factors: readonly CompletedFactor[],
  account: AccountFacts,
): Step | undefined {
  const [first] = factors;
  if (!first || factors.length >= 2) return undefined;
  if (first.method === 'passkey' && first.multiFactor && policy.passkeyCountsAsTwoFactors) return undefined;

  const stepUp = policy.requiredAcr !== undefined;
  const { passkeySupersedesTotp } = policy;
  const passkeyUsable =
    policy.secondFactors.includes('passkey') &&
    FACTOR_TRAITS.passkey.secondFactor({
      account,
      first,
      passkeyUsable: false,
      stepUp,
      passkeySupersedesTotp,
    });
  const enrolled = policy.secondFactors.filter((method: Method) =>
    FACTOR_TRAITS[method].secondFactor({ account, first, passkeyUsable, stepUp, passkeySupersedesTotp }),
  );
  const required =
    policy.secondFactorRequired === 'always' ||
    (policy.secondFactorRequired === 'when_enrolled' && enrolled.length > 0);
  if (!required) return undefined;
  if (enrolled.length > 0) return { step: 'second_factor', methods: enrolled };
  if (!policy.passkeys || policy.enrollPasskeys === false) return { step: 'unmet', reason: 'second_factor' };
  return { step: 'enroll', methods: ['passkey'], optional: false, reason: 'second_factor' };
}
