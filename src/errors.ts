/**
 * Postern's typed errors for its own routes and flows (oidc-provider has its
 * own), and the catalogue of their codes. Each carries a stable snake_case
 * code for clients, a safe sentence for users, a log-only detail, and a
 * status (STYLE.md rule 6). Flows throw them; the http layer's one error
 * handler answers with them.
 *
 * `ERROR_CODES` is the one list of codes a client of Postern's own APIs and
 * pages can meet, each with its status and, where every use says the same,
 * its sentence; `ErrorCode` is its type, so a code that is not listed does
 * not compile. A new code is added here first.
 */

export interface ErrorCodeEntry {
  status: number;
  /** Other statuses the code answers with, where one status does not fit every use. */
  otherStatuses?: readonly number[];
  /** The sentence shown when the thrower gives none: the code's meaning, safe for users. */
  description?: string;
}

export const ERROR_CODES = {
  // ------------------------------------------------------------ any request
  /** A request Postern cannot take as it is: the message says what to change. 415 for a body that is not JSON, or not in an encoding Postern reads. */
  invalid_request: { status: 400, otherStatuses: [415] },
  not_found: { status: 404, description: 'Nothing here.' },
  method_not_allowed: { status: 405, description: 'This address does not take that kind of request.' },
  request_too_large: { status: 413, description: 'The request is too large.' },
  rate_limited: { status: 429, description: 'Too many attempts. Please wait a moment and try again.' },
  /** A bug: the log has the stack (src/http/error-handler.ts). */
  server_error: { status: 500, description: 'Something went wrong on our side.' },
  /** The database or Redis is unreachable (src/http/error-handler.ts). */
  temporarily_unavailable: {
    status: 503,
    description: 'Sign-in is briefly unavailable. Please try again in a moment.',
  },

  // ------------------------------------------------------- interaction API
  interaction_expired: {
    status: 400,
    description:
      'This sign-in has expired or was opened in another browser. Go back to the app and start again.',
  },
  /** A JSON call to the interaction API from another origin than the sign-in page. */
  invalid_origin: { status: 403, description: 'This request did not come from the sign-in page.' },
  account_exists: {
    status: 409,
    description: 'An account with this email already exists. Sign in instead.',
  },
  /** A wrong password (signing in, or the current one when changing it). */
  invalid_credentials: { status: 400 },
  /** A wrong or expired email code or recovery code. */
  invalid_code: { status: 400 },
  code_locked: { status: 400, description: 'Too many wrong codes. Ask for a new code.' },
  /** A passkey ceremony refused, whatever the reason (the log has it). */
  passkey_rejected: { status: 400 },
  /** A synced passkey where the app asked for a device-bound one (acr `phrh`). */
  acr_not_met: {
    status: 400,
    description:
      'This app asks for a passkey kept on one device, such as a security key. A synced passkey cannot be used here.',
  },
  weak_password: { status: 400 },

  // ---------------------------------------------------------- self-service
  /** A missing, invalid or expired bearer token, or one whose user is gone (RFC 6750 §3.1). */
  invalid_token: { status: 401, description: 'Sign in again to continue.' },
  /** A write with a sign-in older than `self_service.recent_auth` (RFC 9470 step-up). */
  login_required: { status: 401, description: 'For your security, sign in again before changing this.' },
  /** A token of a client that is not first-party (RFC 6750 §3.1). */
  insufficient_scope: { status: 403, description: 'This app cannot manage your sign-in methods.' },
  /** The user has `passkeys.registration.max_per_user` passkeys. */
  passkey_limit: { status: 400 },
  /**
   * The pool stores `passkeys.registration.max_per_pool` passkeys, in sign-up,
   * enrolment and self-service alike. 409, not 503: the pool's state refuses
   * the request and stays so until its operator raises the ceiling or
   * passkeys are removed; nothing is down, a retry in a moment would fail
   * the same, and a 5xx would count a configured limit as an outage.
   */
  passkey_pool_full: {
    status: 409,
    description: 'This service cannot store more passkeys right now. Contact its operator.',
  },
  last_way_in: {
    status: 409,
    description: 'This passkey is your only way to sign in. Add another one before removing it.',
  },
  last_second_factor: {
    status: 409,
    description:
      'This service asks for a passkey at every sign-in, and this is your last one. Add another passkey before removing it.',
  },
  /** Another change to the same thing is under way. */
  conflict: { status: 409 },

  /** A passkey registration in a pool that does not use passkeys (`passkeys.enabled: false`, or passkey in no factor). */
  passkeys_disabled: { status: 403, description: 'This service does not use passkeys.' },

  // ------------------------------------------------------------ admin API
  /** An organization slug another organization of the pool already has (src/organizations/). */
  slug_taken: { status: 409, description: 'Another organization of this pool already has this slug.' },

  // ------------------------------------------------------ enrolment links
  /** An enrolment link that is unknown or replaced (404), or used or expired (410). */
  enrollment_link_invalid: { status: 404, otherStatuses: [410] },
  /** A passkey asked for on the enrolment page before its code was entered. */
  email_not_proven: { status: 403, description: 'Enter the code we emailed you first.' },

  // ---------------------------------------------------------- server, demo
  /** A clustered server's metrics, when a worker did not answer in time. */
  metrics_unavailable: {
    status: 503,
    description: 'Metrics for the whole cluster are unavailable right now: a process did not answer in time.',
  },
  demo_unavailable: { status: 502, description: 'The demo app could not reach the demo pool.' },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes whose entry has a sentence, which `errorOf` may leave out. */
type DescribedCode = {
  [C in ErrorCode]: (typeof ERROR_CODES)[C] extends { description: string } ? C : never;
}[ErrorCode];

/**
 * A code another OAuth server answered with, passed on as it came (the demo
 * app's callback shows its pool's `access_denied`): not Postern's to list, so
 * marked as relayed (`relayedCode`) instead of passing for a catalogue code.
 */
export type RelayedCode = string & { readonly relayed: true };

export const relayedCode = (code: string): RelayedCode => code as RelayedCode;

export interface PosternErrorOptions {
  /** (Optional) For the log only: the real reason. */
  detail?: string | undefined;
  /** (Optional) Response headers, e.g. WWW-Authenticate or Retry-After. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class PosternError extends Error {
  readonly code: ErrorCode | RelayedCode;
  readonly status: number;
  /** Safe to show the user. */
  readonly description: string;
  /** For the log only: the real reason. */
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: ErrorCode | RelayedCode,
    description: string,
    { detail, headers = {}, cause }: PosternErrorOptions = {},
  ) {
    super(description, { cause });
    this.name = 'PosternError';
    this.status = status;
    this.code = code;
    this.description = description;
    this.detail = detail;
    this.headers = headers;
  }
}

/**
 * The error of a catalogued code, with the catalogue's status and, unless
 * given, its sentence: `errorOf('invalid_token', { detail })`.
 */
export function errorOf(
  code: DescribedCode,
  options?: PosternErrorOptions & { description?: string },
): PosternError;
export function errorOf(
  code: ErrorCode,
  options: PosternErrorOptions & { description: string },
): PosternError;
export function errorOf(
  code: ErrorCode,
  { description, ...options }: PosternErrorOptions & { description?: string } = {},
): PosternError {
  const entry: ErrorCodeEntry = ERROR_CODES[code];
  // The overloads make a code without a sentence name one; this is for a caller past the types.
  const sentence = description ?? entry.description;
  if (sentence === undefined) throw new Error(`error code ${code} needs a description`);
  return new PosternError(entry.status, code, sentence, options);
}

export const invalidRequest = (description: string, detail?: string) =>
  errorOf('invalid_request', { description, detail });

export const notFound = (description?: string) => errorOf('not_found', { description });

export const rateLimited = (retryAfterSeconds: number) =>
  errorOf('rate_limited', {
    headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
  });

/**
 * 401 for a bearer token that is missing, invalid, or whose user is gone
 * (RFC 6750 §3.1), for every bearer API (self-service, admin).
 */
export const invalidToken = (
  detail: string,
  { missing = false, description }: { missing?: boolean; description?: string } = {},
) =>
  errorOf('invalid_token', {
    detail,
    ...(description ? { description } : {}),
    // Without any token, the challenge carries no error code (RFC 6750 §3.1).
    headers: { 'WWW-Authenticate': missing ? 'Bearer' : 'Bearer error="invalid_token"' },
  });

export const noSuchPasskey = () => notFound('There is no such passkey.');

export const passkeyLimit = (max: number) =>
  errorOf('passkey_limit', {
    description: `You already have ${max} passkeys, the most this service allows. Remove one first.`,
  });

export const passkeyPoolFull = () => errorOf('passkey_pool_full');

export const lastWayIn = () => errorOf('last_way_in');

/** @throws {PosternError} 403 passkeys_disabled where the pool does not use passkeys. */
export function assertPasskeysInUse(inUse: boolean, detail: string): void {
  if (!inUse) throw errorOf('passkeys_disabled', { detail });
}

export const lastSecondFactor = () => errorOf('last_second_factor');

export const passkeysBusy = () =>
  errorOf('conflict', { description: 'Another change to your passkeys is under way. Try again.' });

/** One-line guard: `assertThat(user, notFound('No such user.'))`. */
export function assertThat(
  condition: unknown,
  error: PosternError | (() => PosternError),
): asserts condition {
  if (!condition) throw typeof error === 'function' ? error() : error;
}
