/**
 * Users through `/{pool}/api/admin/users…`: find one by email or page
 * through all, create one (who then enrols through an enrolment link), read
 * one with every credential and their organizations, sign one out
 * everywhere, erase one, read one's audit trail.
 *
 * Erasing signs the user out first (sessions in the ephemeral store, grants
 * and every token they issued), then deletes the user with their passkeys,
 * recovery codes and password in one transaction. The audit trail stays: it
 * is the record of what happened to the account, so a deleted user's events
 * can still be read by id.
 */
import { z } from 'zod';
import { normaliseEmail } from '../accounts/email.ts';
import { errorOf } from '../errors.ts';
import { type OrganizationRef, toOrganizationRef } from '../organizations/organization-service.ts';
import { UniqueViolationError } from '../storage/errors.ts';
import type { StoredAuditEvent } from '../storage/types.ts';
import {
  type AdminContext,
  type AdminPasskeyView,
  type AdminScope,
  foreignCursor,
  keyOfCursor,
  noSuchUser,
  pageOf,
  type SignedOutView,
  signOutEverywhere,
  toAdminPasskeyView,
  toUserView,
  type UserView,
  userOf,
} from './admin-scope.ts';

/** A user with every way they can sign in. */
export interface UserDetail extends UserView {
  passkeys: AdminPasskeyView[];
  password: { set: boolean };
  recovery_codes: { unused: number };
  totp: { set: boolean };
  /** The organizations of the pool they belong to, by slug. */
  organizations: OrganizationRef[];
}

export interface EventView {
  id: number;
  event: string;
  outcome: 'success' | 'failure';
  occurred_at: string;
  credential_id: string | null;
  ip: string | null;
  user_agent: string | null;
  detail: Record<string, unknown> | null;
}

function toEventView(event: StoredAuditEvent): EventView {
  return {
    id: event.id,
    event: event.event,
    outcome: event.outcome,
    occurred_at: event.occurredAt.toISOString(),
    credential_id: event.credentialId,
    ip: event.ip,
    user_agent: event.userAgent,
    detail: event.detail,
  };
}

export function adminUsers(context: AdminContext) {
  const { durable } = context;

  return {
    /** The user with `email` (a list of at most one), or a page of every user, by id. */
    async listUsers(
      scope: AdminScope,
      { email, cursor, limit }: { email?: string; cursor?: string; limit: number },
    ): Promise<{ users: UserView[]; next_cursor: string | null }> {
      if (email !== undefined) {
        const user = await durable.users.findByEmail(scope.pool.id, normaliseEmail(email));
        return { users: user ? [toUserView(user)] : [], next_cursor: null };
      }
      const after = cursor === undefined ? undefined : keyOfCursor(cursor);
      if (after !== undefined && !z.uuid().safeParse(after).success) throw foreignCursor(cursor!);
      const fetched = await durable.users.list(scope.pool.id, {
        ...(after === undefined ? {} : { after }),
        limit: limit + 1,
      });
      const { items, next_cursor } = pageOf(fetched, limit, (user) => user.id);
      return { users: items.map(toUserView), next_cursor };
    },

    /**
     * Creates a user with no way in yet; an enrolment link gives them one.
     * The email is not verified until they prove it.
     * @throws {PosternError} 409 account_exists when the pool has a user with that email.
     */
    async createUser(
      scope: AdminScope,
      { email, name }: { email: string; name?: string },
    ): Promise<UserView> {
      try {
        const user = await durable.users.create({ poolId: scope.pool.id, email, name: name ?? null });
        scope.audit.record({ event: 'user_created', outcome: 'success', userId: user.id });
        return toUserView(user);
      } catch (error) {
        if (!(error instanceof UniqueViolationError)) throw error;
        scope.audit.record({ event: 'user_created', outcome: 'failure', detail: { code: 'account_exists' } });
        throw errorOf('account_exists', {
          description: 'This pool already has a user with this email.',
          detail: normaliseEmail(email),
        });
      }
    },

    /** @throws {PosternError} 404 not_found. */
    async getUser(scope: AdminScope, id: string): Promise<UserDetail> {
      const [account, passkeys] = await Promise.all([
        durable.users.findAccount(scope.pool.id, id),
        durable.passkeys.listByUser(scope.pool.id, id),
      ]);
      if (!account) throw noSuchUser();
      return {
        ...toUserView(account.user),
        passkeys: passkeys.map(toAdminPasskeyView),
        password: { set: account.hasPassword },
        recovery_codes: { unused: account.unusedRecoveryCodes },
        totp: { set: account.hasTotp },
        organizations: account.organizations.map(toOrganizationRef),
      };
    },

    /** Ends every session of the user and revokes every grant and token. @throws {PosternError} 404. */
    async revokeSessions(scope: AdminScope, id: string): Promise<{ signed_out: SignedOutView }> {
      const user = await userOf(context, scope, id);
      return { signed_out: await signOutEverywhere(context, scope, user.id, 'operator_revoked_sessions') };
    },

    /** Signs the user out everywhere, then erases them. @throws {PosternError} 404. */
    async deleteUser(scope: AdminScope, id: string): Promise<{ id: string; signed_out: SignedOutView }> {
      const user = await userOf(context, scope, id);
      const signedOut = await signOutEverywhere(context, scope, user.id, 'user_deleted');
      if (!(await durable.users.delete(scope.pool.id, user.id))) throw noSuchUser();
      scope.audit.record({
        event: 'user_deleted',
        outcome: 'success',
        userId: user.id,
        detail: { email: user.email },
      });
      return { id: user.id, signed_out: signedOut };
    },

    /**
     * The user's audit trail, newest first, paged. Also for a deleted user,
     * whose events stay. @throws {PosternError} 404 for an id with neither a user nor events.
     */
    async listEvents(
      scope: AdminScope,
      id: string,
      { cursor, limit }: { cursor?: string; limit: number },
    ): Promise<{ events: EventView[]; next_cursor: string | null }> {
      const before = cursor === undefined ? undefined : Number(keyOfCursor(cursor));
      if (before !== undefined && !(Number.isSafeInteger(before) && before > 0)) throw foreignCursor(cursor!);
      const [user, fetched] = await Promise.all([
        durable.users.findById(scope.pool.id, id),
        durable.auditEvents.list(scope.pool.id, {
          userId: id,
          limit: limit + 1,
          ...(before === undefined ? {} : { before }),
        }),
      ]);
      if (!user && fetched.length === 0 && before === undefined) throw noSuchUser();
      const { items, next_cursor } = pageOf(fetched, limit, (event) => event.id);
      return { events: items.map(toEventView), next_cursor };
    },
  };
}
