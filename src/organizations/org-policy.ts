/**
 * What an organization does to its members' logins: its settings only ever
 * tighten the pool's (Tesseral's rule). Pure functions, table-tested with
 * next-step in test/unit/interactions/.
 *
 * - `passkey_login: off`: no passkey is offered, asked for or enrolled in a
 *   login for the organization; outside a login (self-service, enrolment
 *   links) a member of any such organization registers none.
 * - `require_mfa`: two factors always (or one passkey with UV, where the pool
 *   counts that as two).
 * - `allowed_first_factors`: the pool's first factors, narrowed to these.
 */
import { passkeysInUse } from '../accounts/passkey-policies.ts';
import type { PoolConfig } from '../config/types.ts';
import type { FlowPolicy } from '../interactions/next-step.ts';
import type { Organization } from '../storage/types.ts';

export type OrganizationSettings = Pick<Organization, 'passkeyLogin' | 'requireMfa' | 'allowedFirstFactors'>;

/** `methods` without passkeys unless `passkeys`, and within `allowed` (null: all), in their order. */
export function narrowFactors<T extends string>(
  methods: readonly T[],
  passkeys: boolean,
  allowed: readonly string[] | null = null,
): T[] {
  return methods.filter(
    (method) => (passkeys || method !== 'passkey') && (allowed?.includes(method) ?? true),
  );
}

/** The pool's flow policy as the organization tightens it. */
export function tightenFlow(flow: FlowPolicy, organization: OrganizationSettings): FlowPolicy {
  const passkeys = flow.passkeys && organization.passkeyLogin;
  const allowed = organization.allowedFirstFactors;
  return {
    ...flow,
    passkeys,
    firstFactors: narrowFactors(flow.firstFactors, passkeys, allowed),
    secondFactors: narrowFactors(flow.secondFactors, passkeys),
    secondFactorRequired: organization.requireMfa ? 'always' : flow.secondFactorRequired,
    offerPasskey: flow.offerPasskey && passkeys,
    // A step-up signs in with a passkey: not where the organization's first factors leave it out.
    ...(allowed && !allowed.includes('passkey') ? { passkeyStepUp: false } : {}),
  };
}

/**
 * Whether this user may register a passkey outside a login (self-service,
 * enrolment links): the pool uses passkeys, and none of their organizations
 * switched passkey login off (a passkey there would be a way in it refuses).
 */
export function passkeysAllowedFor(
  pool: PoolConfig,
  account: { organizations: readonly OrganizationSettings[] },
) {
  return passkeysInUse(pool) && account.organizations.every((organization) => organization.passkeyLogin);
}

/**
 * The name a new passkey is stored under beside the email, so that pickers
 * tell accounts apart: the login's organization, else the user's only one,
 * else the pool's display name.
 */
export function accountLabelFor(
  poolLabel: string,
  account: { organizations: readonly Pick<Organization, 'name'>[] } | undefined,
  loginOrganization?: Pick<Organization, 'name'>,
): string {
  if (loginOrganization) return loginOrganization.name;
  const [only, ...others] = account?.organizations ?? [];
  return only && others.length === 0 ? only.name : poolLabel;
}
