/**
 * Organizations of a pool and their members, as operators manage them: the
 * one place their writes are validated and audited, for the admin API
 * (src/admin/admin-organizations.ts) and the command line (src/cli/orgs.ts)
 * alike. Storage is OrganizationRepository; what an organization does to its
 * members' logins is ./org-policy.ts.
 *
 * - Input arrives as the admin API's JSON (snake_case) and is guarded here
 *   with zod, then against the pool: `allowed_first_factors` may only name
 *   the pool's first factors, and no settings may leave the members without
 *   a first factor they can use (see `usableFirstFactors`).
 * - Every write is audited through the caller's trail (`via: admin` with the
 *   acting `client_id`, or `via: cli`); a slug another organization holds is
 *   refused as `409 slug_taken` and audited as a failure, as a taken email is
 *   for users.
 * - Removing a member, or deleting the organization, signs the members out
 *   everywhere first (see `removeMember`): what they hold was made under the
 *   organization's policy.
 */
import { z } from 'zod';
import type { AuditTrail } from '../accounts/audit-trail.ts';
import { passkeysInUse } from '../accounts/passkey-policies.ts';
import {
  foreignCursor,
  keyOfCursor,
  noSuchUser,
  PAGE_LIMIT,
  pageOf,
  type SignedOutView,
  signOutEverywhere,
} from '../admin/admin-scope.ts';
import { ORGANIZATION_SLUG } from '../config/schema.ts';
import type { PoolConfig } from '../config/types.ts';
import { errorOf, invalidRequest, notFound } from '../errors.ts';
import { PRINTABLE } from '../http/api-fields.ts';
import { parseBody } from '../http/json-body.ts';
import type { Logger } from '../logging/create-logger.ts';
import { UniqueViolationError } from '../storage/errors.ts';
import type {
  DurableStore,
  EphemeralStore,
  Organization,
  OrganizationChanges,
  OrganizationMember,
} from '../storage/types.ts';
import { narrowFactors, type OrganizationSettings } from './org-policy.ts';

/** Who acts, as the admin API's request scope or the command line gives it. */
export interface OrganizationScope {
  pool: PoolConfig;
  /** Each event carries `via: 'admin'` and the acting `client_id`, or `via: 'cli'`. */
  audit: AuditTrail;
  log: Logger;
}

export interface OrganizationServiceDeps {
  durable: DurableStore;
  /** Where sessions live: signing a member out ends theirs. */
  ephemeral: EphemeralStore;
}

/** An organization as the admin API shows it. */
export interface OrganizationView {
  id: string;
  slug: string;
  name: string;
  passkey_login: 'on' | 'off';
  require_mfa: boolean;
  /** null: the pool's first factors. */
  allowed_first_factors: string[] | null;
  created_at: string;
  updated_at: string;
}

/** An organization as a user's view names it. */
export interface OrganizationRef {
  id: string;
  slug: string;
  name: string;
}

export interface MemberView {
  user_id: string;
  email: string;
  added_at: string;
}

/** What adding a member answers (the same whether they were added or already a member). */
export interface MembershipView {
  user_id: string;
  email: string;
  organization: OrganizationRef;
}

export function toOrganizationView(organization: Organization): OrganizationView {
  return {
    id: organization.id,
    slug: organization.slug,
    name: organization.name,
    passkey_login: organization.passkeyLogin ? 'on' : 'off',
    require_mfa: organization.requireMfa,
    allowed_first_factors: organization.allowedFirstFactors ? [...organization.allowedFirstFactors] : null,
    created_at: organization.createdAt.toISOString(),
    updated_at: organization.updatedAt.toISOString(),
  };
}

export function toOrganizationRef({
  id,
  slug,
  name,
}: Pick<Organization, 'id' | 'slug' | 'name'>): OrganizationRef {
  return { id, slug, name };
}

function toMemberView(member: OrganizationMember): MemberView {
  return { user_id: member.userId, email: member.email, added_at: member.addedAt.toISOString() };
}

// ---------------------------------------------------------------- input

const slugField = z
  .string({ error: 'Give the organization a slug.' })
  .regex(
    ORGANIZATION_SLUG,
    'A slug is 1 to 63 lowercase letters, digits and hyphens, and starts and ends with a letter or digit.',
  )
  // The repository reads an id-shaped handle as an id (OrganizationRepository.find).
  .refine((slug) => !z.guid().safeParse(slug).success, 'A slug cannot have the shape of an id (a UUID).');

const nameField = z
  .string({ error: 'Give the organization a name.' })
  .trim()
  .min(1, 'An organization name cannot be empty.')
  .max(100, 'An organization name has at most 100 characters.')
  .regex(PRINTABLE, 'An organization name cannot contain control characters.');

const passkeyLoginField = z.enum(['on', 'off'], { error: 'passkey_login is "on" or "off".' });

const requireMfaField = z.boolean({ error: 'require_mfa is true or false.' });

const allowedFirstFactorsField = z
  .array(z.string({ error: 'allowed_first_factors lists factor names.' }).max(64), {
    error: 'allowed_first_factors is a list of first factors, or null for the pool’s.',
  })
  .min(1, 'allowed_first_factors lists at least one factor (null: the pool’s).')
  .superRefine((factors, ctx) => {
    const twice = factors.find((factor, index) => factors.indexOf(factor) !== index);
    if (twice !== undefined)
      ctx.addIssue({ code: 'custom', message: `allowed_first_factors lists ${twice} twice.` });
  })
  .nullable();

const settings = {
  passkey_login: passkeyLoginField.optional(),
  require_mfa: requireMfaField.optional(),
  allowed_first_factors: allowedFirstFactorsField.optional(),
};

/** The body of a creation: `{ slug, name, passkey_login?, require_mfa?, allowed_first_factors? }`. */
const NewOrganizationBody = z.strictObject({ slug: slugField, name: nameField, ...settings });

/** A change: any of the creation's fields, at least one. */
const OrganizationChangesBody = z
  .strictObject({ slug: slugField.optional(), name: nameField.optional(), ...settings })
  .refine((body) => Object.values(body).some((value) => value !== undefined), {
    error: 'Say what to change: slug, name, passkey_login, require_mfa or allowed_first_factors.',
  });

type ChangesBody = z.output<typeof OrganizationChangesBody>;

function toChanges(body: ChangesBody): OrganizationChanges {
  const changes: OrganizationChanges = {};
  if (body.slug !== undefined) changes.slug = body.slug;
  if (body.name !== undefined) changes.name = body.name;
  if (body.passkey_login !== undefined) changes.passkeyLogin = body.passkey_login === 'on';
  if (body.require_mfa !== undefined) changes.requireMfa = body.require_mfa;
  if (body.allowed_first_factors !== undefined) changes.allowedFirstFactors = body.allowed_first_factors;
  return changes;
}

/**
 * The pool's first factors a member of the organization can sign in with:
 * the pool's, without passkeys where the pool does not use them or the
 * organization switched passkey login off, narrowed to its allowed ones.
 * The login's own narrowing (org-policy.ts).
 */
export function usableFirstFactors(
  pool: PoolConfig,
  { passkeyLogin, allowedFirstFactors }: Pick<OrganizationSettings, 'passkeyLogin' | 'allowedFirstFactors'>,
): string[] {
  return narrowFactors(
    pool.authentication.first_factor,
    passkeysInUse(pool) && passkeyLogin,
    allowedFirstFactors,
  );
}

/**
 * Settings the pool can honour: allowed first factors it has, and at least
 * one usable first factor left, or the members could not sign in at all.
 * @throws {PosternError} 400 invalid_request naming the factor, or saying why no way in is left.
 */
function assertSettingsFit(pool: PoolConfig, settings: OrganizationSettings): void {
  const poolFactors: readonly string[] = pool.authentication.first_factor;
  const foreign = settings.allowedFirstFactors?.find((factor) => !poolFactors.includes(factor));
  if (foreign !== undefined)
    throw invalidRequest(
      `allowed_first_factors lists ${foreign}, which is not a first factor of this pool (it has ${poolFactors.join(', ')}).`,
      `pool ${pool.id} first_factor: ${poolFactors.join(', ')}`,
    );
  if (usableFirstFactors(pool, settings).length === 0)
    throw invalidRequest(
      settings.passkeyLogin
        ? 'These settings leave the members no way to sign in: this pool does not use passkeys, and they are the only first factor allowed.'
        : 'These settings leave the members no way to sign in: with passkey_login off, allow a first factor other than passkey.',
      `pool ${pool.id} first_factor: ${poolFactors.join(', ')}; passkeys in use: ${passkeysInUse(pool)}`,
    );
  // A required second factor needs one a member can have: a passkey where they may use one, or TOTP
  // (recovery codes are only a passkey's fallback).
  const secondFactors = narrowFactors(
    pool.authentication.second_factor,
    passkeysInUse(pool) && settings.passkeyLogin,
  ).filter((factor) => factor === 'totp' || factor === 'passkey');
  if (settings.requireMfa && secondFactors.length === 0)
    throw invalidRequest(
      'require_mfa needs a second factor the members can use: with passkeys off, this pool offers none (add totp to its second factors).',
      `pool ${pool.id} second_factor: ${pool.authentication.second_factor.join(', ')}`,
    );
}

/**
 * The pool file's client bound to this organization, if any: renaming or
 * deleting the organization would break that client's sign-ins.
 * @throws {PosternError} 409 conflict naming the client.
 */
function assertUnbound(pool: PoolConfig, organization: Organization, what: string): void {
  const bound = pool.clients.find((client) => client.organization === organization.slug);
  if (bound)
    throw errorOf('conflict', {
      description: `The client ${bound.client_id} is bound to this organization in the pool file: ${what} would break its sign-ins. Change the pool file first.`,
    });
}

/** Whether `after` asks more of the members than `before`: passkeys switched off, MFA on, fewer first factors. */
function tightens(pool: PoolConfig, before: Organization, after: Organization): boolean {
  const firstFactorsAfter = usableFirstFactors(pool, after);
  return (
    (before.passkeyLogin && !after.passkeyLogin) ||
    (!before.requireMfa && after.requireMfa) ||
    usableFirstFactors(pool, before).some((factor) => !firstFactorsAfter.includes(factor))
  );
}

const noSuchOrganization = () => notFound('There is no such organization.');

const slugTaken = (slug: string) =>
  errorOf('slug_taken', {
    detail: `slug ${slug}`,
    description: `Another organization of this pool has the slug "${slug}".`,
  });

/** The id an id-ordered list's cursor holds. @throws {PosternError} 400 for a cursor this API did not give. */
function idAfter(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const after = keyOfCursor(cursor);
  if (!z.guid().safeParse(after).success) throw foreignCursor(cursor);
  return after;
}

/** The fields of the API view whose value differs between two states of an organization. */
function changedFields(before: OrganizationView, after: OrganizationView): string[] {
  const fields = ['slug', 'name', 'passkey_login', 'require_mfa', 'allowed_first_factors'] as const;
  return fields.filter((field) => JSON.stringify(before[field]) !== JSON.stringify(after[field]));
}

/**
 * The organization use cases over `durable` and `ephemeral`. Every method
 * takes the acting scope first; ids and slugs are the pool's own (another
 * pool's organization or user is not found).
 */
export function createOrganizationService({ durable, ephemeral }: OrganizationServiceDeps) {
  const stores = { durable, ephemeral };

  /** @throws {PosternError} 404 not_found. */
  async function organizationOf(scope: OrganizationScope, idOrSlug: string): Promise<Organization> {
    const organization = idOrSlug ? await durable.organizations.find(scope.pool.id, idOrSlug) : undefined;
    if (!organization) throw noSuchOrganization();
    return organization;
  }

  /**
   * Every member, a page at a time (a deleted organization's members are
   * signed out, however many there are).
   */
  async function* everyMember(scope: OrganizationScope, organizationId: string) {
    let after: string | undefined;
    for (;;) {
      const page = await durable.organizations.listMembers(scope.pool.id, organizationId, {
        ...(after === undefined ? {} : { after }),
        limit: PAGE_LIMIT.max,
      });
      yield* page;
      if (page.length < PAGE_LIMIT.max) return;
      after = page.at(-1)!.userId;
    }
  }

  /** Signs every member out everywhere; returns how many there were. */
  async function signOutMembers(scope: OrganizationScope, organizationId: string, reason: string) {
    let members = 0;
    for await (const member of everyMember(scope, organizationId)) {
      await signOutEverywhere(stores, scope, member.userId, reason);
      members++;
    }
    return members;
  }

  return {
    /** A page of the pool's organizations, by id. @throws {PosternError} 400 for a foreign cursor. */
    async listOrganizations(
      scope: OrganizationScope,
      { cursor, limit }: { cursor?: string; limit: number },
    ): Promise<{ organizations: OrganizationView[]; next_cursor: string | null }> {
      const after = idAfter(cursor);
      const fetched = await durable.organizations.list(scope.pool.id, {
        ...(after === undefined ? {} : { after }),
        limit: limit + 1,
      });
      const { items, next_cursor } = pageOf(fetched, limit, (organization) => organization.id);
      return { organizations: items.map(toOrganizationView), next_cursor };
    },

    /**
     * Creates an organization from `body` (NewOrganizationBody): passkey
     * login on, no MFA demanded and the pool's first factors unless it says otherwise.
     * @throws {PosternError} 400 invalid_request for a bad body or settings the pool cannot honour;
     *   409 slug_taken.
     */
    async createOrganization(scope: OrganizationScope, body: unknown): Promise<OrganizationView> {
      const input = parseBody(NewOrganizationBody, body);
      const settings = {
        passkeyLogin: (input.passkey_login ?? 'on') === 'on',
        requireMfa: input.require_mfa ?? false,
        allowedFirstFactors: input.allowed_first_factors ?? null,
      };
      assertSettingsFit(scope.pool, settings);
      try {
        const organization = await durable.organizations.create({
          poolId: scope.pool.id,
          slug: input.slug,
          name: input.name,
          ...settings,
        });
        scope.audit.record({
          event: 'organization_created',
          outcome: 'success',
          detail: { organization_id: organization.id, slug: organization.slug },
        });
        return toOrganizationView(organization);
      } catch (error) {
        if (!(error instanceof UniqueViolationError)) throw error;
        scope.audit.record({
          event: 'organization_created',
          outcome: 'failure',
          detail: { code: 'slug_taken', slug: input.slug },
        });
        throw slugTaken(input.slug);
      }
    },

    /** @throws {PosternError} 404 not_found. */
    async getOrganization(scope: OrganizationScope, idOrSlug: string): Promise<OrganizationView> {
      return toOrganizationView(await organizationOf(scope, idOrSlug));
    },

    /**
     * Applies `body` (OrganizationChangesBody), judging the settings as they
     * will be: a change to one field may leave no way in with the others.
     * Two concurrent changes are each judged against the state before both;
     * operators change an organization rarely enough to leave that open.
     * @throws {PosternError} 400 invalid_request; 404 not_found; 409 slug_taken.
     */
    async updateOrganization(
      scope: OrganizationScope,
      idOrSlug: string,
      body: unknown,
    ): Promise<OrganizationView> {
      const changes = toChanges(parseBody(OrganizationChangesBody, body));
      const current = await organizationOf(scope, idOrSlug);
      if (changes.slug !== undefined && changes.slug !== current.slug)
        assertUnbound(scope.pool, current, 'a new slug');
      assertSettingsFit(scope.pool, {
        passkeyLogin: changes.passkeyLogin ?? current.passkeyLogin,
        requireMfa: changes.requireMfa ?? current.requireMfa,
        allowedFirstFactors:
          changes.allowedFirstFactors === undefined
            ? current.allowedFirstFactors
            : changes.allowedFirstFactors,
      });
      let updated: Organization | undefined;
      try {
        updated = await durable.organizations.update(scope.pool.id, current.id, changes);
      } catch (error) {
        if (!(error instanceof UniqueViolationError) || changes.slug === undefined) throw error;
        scope.audit.record({
          event: 'organization_updated',
          outcome: 'failure',
          detail: { organization_id: current.id, code: 'slug_taken', slug: changes.slug },
        });
        throw slugTaken(changes.slug);
      }
      if (!updated) throw noSuchOrganization();
      // Sessions made under looser settings would still answer for the organization: they end.
      const members = tightens(scope.pool, current, updated)
        ? await signOutMembers(scope, updated.id, 'organization_tightened')
        : 0;
      const view = toOrganizationView(updated);
      scope.audit.record({
        event: 'organization_updated',
        outcome: 'success',
        detail: {
          organization_id: updated.id,
          slug: updated.slug,
          changed: changedFields(toOrganizationView(current), view),
          members_signed_out: members,
        },
      });
      return view;
    },

    /**
     * Signs every member out everywhere, then deletes the organization with
     * its memberships and grant records. In that order, as for a removed
     * member: their sessions and tokens were made under its policy and name
     * it (`org_id`), and a retry after a failed deletion finds the members
     * again, where the other order would lose them with the memberships.
     * One member at a time: a large organization takes a while to delete,
     * but never floods the stores.
     * @throws {PosternError} 404 not_found.
     */
    async deleteOrganization(
      scope: OrganizationScope,
      idOrSlug: string,
    ): Promise<{ id: string; members_signed_out: number }> {
      const organization = await organizationOf(scope, idOrSlug);
      assertUnbound(scope.pool, organization, 'deleting it');
      const members = await signOutMembers(scope, organization.id, 'organization_deleted');
      if (!(await durable.organizations.delete(scope.pool.id, organization.id))) throw noSuchOrganization();
      scope.audit.record({
        event: 'organization_deleted',
        outcome: 'success',
        detail: { organization_id: organization.id, slug: organization.slug, members },
      });
      return { id: organization.id, members_signed_out: members };
    },

    /** A page of the members, by user id. @throws {PosternError} 400 for a foreign cursor; 404 not_found. */
    async listMembers(
      scope: OrganizationScope,
      idOrSlug: string,
      { cursor, limit }: { cursor?: string; limit: number },
    ): Promise<{ members: MemberView[]; next_cursor: string | null }> {
      const after = idAfter(cursor);
      const organization = await organizationOf(scope, idOrSlug);
      const fetched = await durable.organizations.listMembers(scope.pool.id, organization.id, {
        ...(after === undefined ? {} : { after }),
        limit: limit + 1,
      });
      const { items, next_cursor } = pageOf(fetched, limit, (member) => member.userId);
      return { members: items.map(toMemberView), next_cursor };
    },

    /**
     * Makes the pool's user `userId` a member; `added` is false when they
     * already were (nothing changes, nothing is audited). Their current
     * sessions stay: a membership only adds a way to sign in.
     * @throws {PosternError} 404 for an unknown organization or user (another pool's too).
     */
    async addMember(
      scope: OrganizationScope,
      idOrSlug: string,
      userId: string,
    ): Promise<{ added: boolean; membership: MembershipView }> {
      const [organization, user] = await Promise.all([
        organizationOf(scope, idOrSlug),
        durable.users.findById(scope.pool.id, userId),
      ]);
      if (!user) throw noSuchUser();
      const outcome = await durable.organizations.addMember(scope.pool.id, organization.id, user.id);
      // Either was deleted since it was read.
      if (outcome === 'not_found')
        throw (await durable.users.findById(scope.pool.id, user.id)) ? noSuchOrganization() : noSuchUser();
      if (outcome === 'added')
        scope.audit.record({
          event: 'organization_member_added',
          outcome: 'success',
          userId: user.id,
          detail: { organization_id: organization.id, slug: organization.slug },
        });
      return {
        added: outcome === 'added',
        membership: { user_id: user.id, email: user.email, organization: toOrganizationRef(organization) },
      };
    },

    /**
     * Signs the member out everywhere, then removes them: the sessions and
     * tokens they hold were made under the organization's login policy and
     * carry it (`org_id`), so a removed member must sign in again, outside
     * it. In that order, as for a removed passkey (src/admin/admin-passkeys.ts):
     * should the removal fail, a retry finds the member and does both again.
     * @throws {PosternError} 404 for an unknown organization, or a user who is no member.
     */
    async removeMember(
      scope: OrganizationScope,
      idOrSlug: string,
      userId: string,
    ): Promise<{ signed_out: SignedOutView }> {
      const organization = await organizationOf(scope, idOrSlug);
      const account = await durable.users.findAccount(scope.pool.id, userId);
      const noMember = () => notFound('This user is no member of this organization.');
      if (!account?.organizations.some((theirs) => theirs.id === organization.id)) throw noMember();
      const signedOut = await signOutEverywhere(
        stores,
        scope,
        account.user.id,
        'organization_member_removed',
      );
      if (!(await durable.organizations.removeMember(scope.pool.id, organization.id, account.user.id)))
        throw noMember();
      scope.audit.record({
        event: 'organization_member_removed',
        outcome: 'success',
        userId: account.user.id,
        detail: { organization_id: organization.id, slug: organization.slug },
      });
      return { signed_out: signedOut };
    },
  };
}

export type OrganizationService = ReturnType<typeof createOrganizationService>;
