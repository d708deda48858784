/**
 * The login use cases behind the interaction API: one function per call of
 * CONTRACT.md's table (and Postern's extensions). Each loads what this
 * interaction achieved, checks the call fits the current step (`nextStep`),
 * runs one factor, records the outcome, and answers with the next step or,
 * once the login is complete, where the browser goes (`redirect_to`).
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
import { createLoginKit, type LoginServiceDeps } from './login-kit.ts';

export type { Answer, InteractionScope, LoginServiceDeps, StepAnswer } from './login-kit.ts';

export function createLoginService(deps: LoginServiceDeps) {
  const kit = createLoginKit(deps);
  return {
    ...flowCalls(kit),
    ...passkeyCalls(kit),
    ...emailCodeCalls(kit),
    ...passwordCalls(kit),
    ...recoveryCodeCalls(kit),
  };
}

export type LoginService = ReturnType<typeof createLoginService>;
