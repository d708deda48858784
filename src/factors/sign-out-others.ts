/**
 * Signing the user out everywhere else from inside a login
 * (src/oidc/sign-out-elsewhere.ts), for the changes a login makes that may
 * answer a stolen credential: a recovery sign-in, and a lost passkey removed
 * at its recovery step. This browser's own session is kept when it already
 * is the user's (the interaction's session); a browser signing in for the
 * first time has none of theirs yet, and gets one when the login completes.
 * The answer says what was signed out (`signed_out: { sessions, apps }`), as
 * the self-service API's do.
 */
import type { LoginContext } from '../interactions/login-context.ts';
import type { Answer } from '../interactions/present-step.ts';
import { signOutElsewhere } from '../oidc/sign-out-elsewhere.ts';

/** What was signed out, as an answer says it: other browsers' sessions, and distinct apps. */
export interface SignedOutView {
  sessions: number;
  apps: number;
}

/** Why a login signs the user out elsewhere, as the audit trail records it. */
export type LoginSignOutReason = 'recovery_sign_in' | 'passkey_removed';

/**
 * Ends the user's other sessions and grants, keeping this browser's session
 * if it is the user's, and audits it as `signed_out_elsewhere`.
 * @throws {StoreUnavailableError} when a store is unreachable.
 */
export async function signOutOthers(
  ctx: LoginContext,
  userId: string,
  reason: LoginSignOutReason,
): Promise<SignedOutView> {
  const session = ctx.scope.interaction.session;
  const sessionUid = session?.accountId === userId ? session.uid : undefined;
  const { durable, ephemeral } = ctx.kit.deps;
  const signedOut = await signOutElsewhere(
    { durable, ephemeral },
    { poolId: ctx.pool.id, accountId: userId, keep: sessionUid === undefined ? {} : { sessionUid } },
  );
  ctx.audit('signed_out_elsewhere', 'success', { userId, detail: { reason, ...signedOut } });
  ctx.log.info({ user: userId, reason, ...signedOut }, 'signed out elsewhere');
  return { sessions: signedOut.sessions, apps: signedOut.apps };
}

/** `answer` with what was signed out elsewhere. */
export function withSignedOut<A extends Answer>(answer: A, signedOut: SignedOutView) {
  return { ...answer, signed_out: signedOut };
}
