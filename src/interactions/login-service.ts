/**
 * The login use cases behind the interaction API: one function per call of
 * CONTRACT.md's table (and Postern's extensions). Each call is one
 * LoginContext (./login-context.ts): it loads what this interaction achieved,
 * checks the call fits the current step (`nextStep`), runs one factor,
 * records the outcome, and answers with the next step or, once the login is
 * complete, where the browser goes (`redirect_to`); its audit rows are
 * written when it ends, refused or not.
 *
 * Rules kept across all calls (see each module in ./calls/):
 * - nothing tells whether an account exists;
 * - a credential is bound to an account only after its email is proven
 *   (sign-up) or by the signed-in user;
 * - every refusal is audited with its real reason and answered generically;
 * - the login result carries amr/acr exactly as the factors prove them, and a
 *   request that demands phr/phrh is only answered after a login that meets it.
 */
import { emailCodeCalls } from './calls/email-code-calls.ts';
import { flowCalls } from './calls/flow-calls.ts';
import { passkeyCalls } from './calls/passkey-calls.ts';
import { passwordCalls } from './calls/password-calls.ts';
import { recoveryCodeCalls } from './calls/recovery-code-calls.ts';
import { LoginContext, type LoginScope } from './login-context.ts';
import { createLoginKit, type LoginKit, type LoginServiceDeps } from './login-kit.ts';

export type { LoginScope } from './login-context.ts';
export type { LoginServiceDeps } from './login-kit.ts';
export type { Answer, StepAnswer } from './present-step.ts';

/** A use case over a context, as the routes call it: over a request's scope. */
type Call<B, R> = (ctx: LoginContext, body: B) => Promise<R>;

function inContext<B, R>(kit: LoginKit, call: Call<B, R>) {
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
  const calls = { ...flowCalls, ...passkeyCalls, ...emailCodeCalls, ...passwordCalls, ...recoveryCodeCalls };
  type Calls = typeof calls;
  return Object.fromEntries(
    Object.entries(calls).map(([name, call]) => [name, inContext(kit, call as Call<unknown, unknown>)]),
  ) as {
    [K in keyof Calls]: Calls[K] extends (ctx: LoginContext, ...rest: infer A) => Promise<infer R>
      ? (scope: LoginScope, ...rest: A) => Promise<R>
      : never;
  };
}

export type LoginService = ReturnType<typeof createLoginService>;
