/**
 * The login use cases behind the interaction API (CONTRACT.md's table and
 * Postern's extensions): the calls of every factor (src/factors/*) and of
 * the flow itself (./flow-calls.ts). Each call is one LoginContext
 * (./login-context.ts): it loads what this interaction achieved, checks the
 * call fits the current step (`nextStep`), runs one factor, records the
 * outcome, and answers with the next step or, once the login is complete,
 * where the browser goes (`redirect_to`); its audit rows are written when it
 * ends, refused or not.
 *
 * Rules kept across all calls:
 * - nothing tells whether an account exists;
 * - a credential is bound to an account only after its email is proven
 *   (sign-up) or by the signed-in user;
 * - every refusal is audited with its real reason and answered generically;
 * - the login result carries amr/acr exactly as the factors prove them, and a
 *   request that demands phr/phrh is only answered after a login that meets it.
 */
import type { z } from 'zod';
import type { BodyReader, LoginCall } from '../factors/factor.ts';
import { LOGIN_FACTORS } from '../factors/login-factors.ts';
import { flowCalls } from './flow-calls.ts';
import { FLOW_CALLS } from './flow-routes.ts';
import { LoginContext, type LoginScope } from './login-context.ts';
import { createLoginKit, type LoginKit, type LoginServiceDeps } from './login-kit.ts';
import type { Answer } from './present-step.ts';
import { loadProgressRecord, type ProgressRecord } from './progress.ts';

export type { LoginScope } from './login-context.ts';
export type { LoginServiceDeps } from './login-kit.ts';
export type { Answer, StepAnswer } from './present-step.ts';

/**
 * A call as the routes make it: over a request's scope, in a context of its
 * own. The routes guard its body first, or, for a ceremony's verification
 * (`bodyAfterChallenge`), hand it a reader it calls once its challenge is taken.
 */
export type ScopedCall =
  | {
      path: string;
      body: z.ZodType;
      bodyAfterChallenge?: false;
      run(scope: LoginScope, body: unknown): Promise<Answer | object>;
    }
  | {
      path: string;
      body: z.ZodType;
      bodyAfterChallenge: true;
      run(scope: LoginScope, readBody: BodyReader<unknown>): Promise<Answer | object>;
    };

function inContext<B, R>(kit: LoginKit, call: (ctx: LoginContext, body: B) => Promise<R>) {
  return async (scope: LoginScope, body: B): Promise<R> => {
    const ctx = await LoginContext.open(kit, scope);
    let result: R;
    try {
      result = await call(ctx, body);
    } catch (error) {
      // The refusal's audit rows still land; a failure to write them must not hide the refusal.
      await ctx
        .close()
        .catch((closeError: unknown) =>
          scope.log.error({ err: closeError }, 'writing the audit trail of a refused call failed'),
        );
      throw error;
    }
    await ctx.close();
    return result;
  };
}

export function createLoginService(deps: LoginServiceDeps) {
  const kit = createLoginKit(deps);
  const scoped = (call: LoginCall): ScopedCall =>
    call.bodyAfterChallenge
      ? { ...call, run: inContext(kit, call.run) }
      : { ...call, run: inContext(kit, call.run) };
  const state = inContext(kit, (ctx: LoginContext) => flowCalls.state(ctx));
  return {
    /**
     * Begins reading the progress of interaction `uid` of `poolId`, for the
     * scope's `storedProgress`: the read runs while the interaction is looked
     * up. Its failure is handled where it is awaited.
     */
    prefetchProgress(poolId: string, uid: string): Promise<ProgressRecord> {
      const read = loadProgressRecord(kit.deps.ephemeral, poolId, uid);
      read.catch(() => {}); // awaited by LoginContext.open, or dropped with a refused lookup
      return read;
    },
    /** `GET …/state`: where the login stands. */
    state: (scope: LoginScope) => state(scope, undefined),
    /** Every `POST …/{path}` of the interaction API. */
    calls: [...FLOW_CALLS, ...LOGIN_FACTORS.flatMap((factor) => factor.calls)].map(scoped),
  };
}

export type LoginService = ReturnType<typeof createLoginService>;
