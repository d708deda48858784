/**
 * What a sign-in factor is to Postern, one folder each (factors/passkey,
 * email-code, password, recovery-code): its traits, which the login's state
 * machine reads instead of naming factors (src/interactions/next-step.ts),
 * the factor it completes (amr, acr), and the interaction API calls through
 * which it is verified, enrolled and removed. Adding a factor is adding a
 * folder and listing it in ./traits.ts and ./login-factors.ts.
 */
import type { z } from 'zod';
import type { LoginContext } from '../interactions/login-context.ts';
import type { Answer } from '../interactions/present-step.ts';
import type { Account } from '../storage/types.ts';
import type { Method } from './methods.ts';

/** What the account has enrolled, as steps are decided on it; undefined while the account is unknown. */
export interface AccountFacts {
  passkeys: number;
  hasRecoveryCodes: boolean;
  hasPassword: boolean;
  hasTotp: boolean;
}

/** The facts of an account as storage reads it (one query: users.findAccount). */
export function accountFactsOf(account: Account): AccountFacts {
  return {
    passkeys: account.passkeys,
    hasRecoveryCodes: account.unusedRecoveryCodes > 0,
    hasPassword: account.hasPassword,
    hasTotp: account.hasTotp,
  };
}

/** What `nextStep` needs to know about a factor. Pure: no I/O, no imports beyond types. */
export interface FactorTraits {
  /** A credential an account can be created with at sign-up (it becomes a way in). */
  signUpCredential: boolean;
  /**
   * As a first factor, it still lets this account in (so its last passkey may go).
   * Passkeys are counted by the caller: this asks about the other factors.
   */
  waysIn(account: AccountFacts): boolean;
  /** Completing it proves the user holds the email (so a required passkey may be enrolled after it). */
  provesEmail: boolean;
  /** As a first factor, it can prove a signed-in user before a step-up makes their first passkey. */
  stepUpProof(account: AccountFacts): boolean;
  /**
   * As the second factor after `first`, whether this account can use it.
   * `passkeyUsable` says whether a passkey could be the second factor here.
   */
  secondFactor(context: {
    account: AccountFacts;
    first: { method: Method };
    passkeyUsable: boolean;
    /** The request demands phr/phrh. */
    stepUp: boolean;
    /** The pool's `passkey_supersedes_totp`. */
    passkeySupersedesTotp: boolean;
  }): boolean;
}

/**
 * Reads the request's body and guards it with the call's schema, when the
 * call asks: 400 or 413 for a body it does not take (src/http/json-body.ts).
 */
export type BodyReader<T> = () => Promise<T>;

/**
 * One interaction API call a factor serves: `POST /{pool}/interaction/{uid}/{path}`.
 * Most get their body guarded before they run; a ceremony's verification
 * (`bodyAfterChallenge`) reads it itself once it has taken its challenge, so
 * that a body refused for its shape spends the challenge too
 * (https://www.w3.org/TR/webauthn-3/#sctn-cryptographic-challenges).
 */
export type LoginCall<S extends z.ZodType = z.ZodType> =
  | {
      path: string;
      body: S;
      bodyAfterChallenge?: false;
      run(ctx: LoginContext, body: z.output<S>): Promise<Answer | object>;
    }
  | {
      path: string;
      body: S;
      bodyAfterChallenge: true;
      run(ctx: LoginContext, readBody: BodyReader<z.output<S>>): Promise<Answer | object>;
    };

export interface LoginFactor {
  method: Method;
  traits: FactorTraits;
  calls: readonly LoginCall[];
}

/** A call, typed by its body schema. */
export function loginCall<S extends z.ZodType>(
  path: string,
  body: S,
  run: (ctx: LoginContext, body: z.output<S>) => Promise<Answer | object>,
): LoginCall {
  return { path, body, run } as LoginCall;
}

/** A ceremony's verification: it takes its challenge, then reads its body with `readBody`. */
export function ceremonyCall<S extends z.ZodType>(
  path: string,
  body: S,
  run: (ctx: LoginContext, readBody: BodyReader<z.output<S>>) => Promise<Answer | object>,
): LoginCall {
  return { path, body, bodyAfterChallenge: true, run } as LoginCall;
}
