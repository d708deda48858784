/**
 * Postern's typed errors for its own routes and flows (oidc-provider has its
 * own). Each carries a stable snake_case code for clients, a safe sentence for
 * users, a log-only detail, and a status (STYLE.md rule 6). Flows throw them;
 * the http layer's one error handler answers with them.
 */

export class PosternError extends Error {
  readonly code: string;
  readonly status: number;
  /** Safe to show the user. */
  readonly description: string;
  /** For the log only: the real reason. */
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    description: string,
    {
      detail,
      headers = {},
      cause,
    }: { detail?: string; headers?: Record<string, string>; cause?: unknown } = {},
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

export const invalidRequest = (description: string, detail?: string) =>
  new PosternError(400, 'invalid_request', description, { detail });

export const notFound = (description = 'Nothing here.') => new PosternError(404, 'not_found', description);

export const rateLimited = (retryAfterSeconds: number) =>
  new PosternError(429, 'rate_limited', 'Too many attempts. Please wait a moment and try again.', {
    headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
  });

export const noSuchPasskey = () => new PosternError(404, 'not_found', 'There is no such passkey.');

export const passkeyLimit = (max: number) =>
  new PosternError(
    400,
    'passkey_limit',
    `You already have ${max} passkeys, the most this service allows. Remove one first.`,
  );

export const lastWayIn = () =>
  new PosternError(
    409,
    'last_way_in',
    'This passkey is your only way to sign in. Add another one before removing it.',
  );

export const lastSecondFactor = () =>
  new PosternError(
    409,
    'last_second_factor',
    'This service asks for a passkey at every sign-in, and this is your last one. Add another passkey before removing it.',
  );

export const passkeysBusy = () =>
  new PosternError(409, 'conflict', 'Another change to your passkeys is under way. Try again.');

/** One-line guard: `assertThat(user, notFound('No such user.'))`. */
export function assertThat(
  condition: unknown,
  error: PosternError | (() => PosternError),
): asserts condition {
  if (!condition) throw typeof error === 'function' ? error() : error;
}
