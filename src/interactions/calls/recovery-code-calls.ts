/**
 * Recovery codes: issued once a user has a second factor (shown once, stored
 * as keyed hashes), used as a second factor where the pool lists them. A
 * recovery sign-in says so (amr otp, acr 0), tells how many codes remain,
 * and is offered to replace the lost passkey.
 *
 * A recovery sign-in also signs the user out everywhere else, the moment the
 * code is accepted (src/oidc/sign-out-elsewhere.ts): whoever has the lost
 * passkey must not stay signed in with it. This browser's own session, if it
 * already was the user's, is kept. The answer says what was signed out
 * (`signed_out: { sessions, apps }`).
 */
import { PosternError } from '../../errors.ts';
import { issueFirstRecoveryCodes as issueFirstCodes } from '../../factors/recovery-code/issue-recovery-codes.ts';
import { hashRecoveryCode } from '../../factors/recovery-code/recovery-codes.ts';
import { signOutElsewhere } from '../../oidc/sign-out-elsewhere.ts';
import type { Answer, InteractionScope, LoginKit } from '../login-kit.ts';

/** What a recovery sign-in signed out, as its answer says it. */
interface SignedOutAnswer {
  signed_out: { sessions: number; apps: number };
}

/** `answer` with what was signed out elsewhere. */
function withSignedOut<A extends Answer>(answer: A, signedOut: SignedOutAnswer['signed_out']) {
  return { ...answer, signed_out: signedOut };
}

/**
 * The first time a user gets a second factor they get ten codes
 * (factors/recovery-code). Returns them, to be shown once; undefined when the
 * user already holds codes or the pool uses none.
 */
export async function issueFirstRecoveryCodes(kit: LoginKit, scope: InteractionScope, userId: string) {
  const codes = await issueFirstCodes(kit.deps.durable.recoveryCodes, kit.keys.recoveryCodes, {
    poolId: scope.pool.id,
    userId,
    authentication: scope.pool.authentication,
  });
  if (codes)
    await kit.audit(scope, 'recovery_codes_issued', 'success', { userId, detail: { count: codes.length } });
  return codes;
}

export function recoveryCodeCalls(kit: LoginKit) {
  const { durable, ephemeral } = kit.deps;

  /** Ends the user's other sessions and grants; this browser's session stays if it is the user's. */
  async function signOutOthers(scope: InteractionScope, userId: string) {
    const session = scope.interaction.session;
    const sessionUid = session?.accountId === userId ? session.uid : undefined;
    const signedOut = await signOutElsewhere(
      { durable, ephemeral },
      { poolId: scope.pool.id, accountId: userId, keep: sessionUid === undefined ? {} : { sessionUid } },
    );
    await kit.audit(scope, 'signed_out_elsewhere', 'success', {
      userId,
      detail: { reason: 'recovery_sign_in', ...signedOut },
    });
    scope.log.info({ user: userId, ...signedOut }, 'signed out elsewhere after a recovery sign-in');
    return { sessions: signedOut.sessions, apps: signedOut.apps };
  }

  return {
    async recoveryCode(scope: InteractionScope, { code }: { code: string }): Promise<Answer> {
      await kit.limit(scope, 'recovery_code_ip', scope.ip);
      const progress = await kit.loadProgress(scope);
      const step = await kit.requireStep(
        scope,
        progress,
        (candidate) => candidate.step === 'second_factor' && candidate.methods.includes('recovery_code'),
        'A recovery code',
      );
      const userId = progress.userId;
      if (step.step !== 'second_factor' || !userId) throw kit.notNow('A recovery code');
      await kit.limit(scope, 'recovery_code_user', `${scope.pool.id}:${userId}`);

      const remaining = await durable.recoveryCodes.use(
        scope.pool.id,
        userId,
        hashRecoveryCode(kit.keys.recoveryCodes, code),
      );
      if (remaining === undefined) {
        await kit.audit(scope, 'sign_in', 'failure', {
          userId,
          detail: { method: 'recovery_code', reason: 'unknown or used code' },
        });
        throw new PosternError(400, 'invalid_code', 'That recovery code is not valid or was already used.');
      }
      await kit.audit(scope, 'recovery_code_used', 'success', { userId, detail: { remaining } });
      scope.log.info({ user: userId, remaining }, 'recovery sign-in');
      const signedOut = await signOutOthers(scope, userId);
      const factor = { method: 'recovery_code' as const, amr: ['otp'], multiFactor: false, at: kit.now() };
      const answer = await kit.advance(
        scope,
        { ...progress, factors: [...progress.factors, factor], recovered: true },
        { recovery_codes_remaining: remaining },
      );
      return withSignedOut(answer, signedOut);
    },
  };
}
