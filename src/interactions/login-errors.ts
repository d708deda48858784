/** Refusals every login call may answer with. */
import { PosternError } from '../errors.ts';

/** A call that does not fit the login's current step. */
export function notNow(what: string): PosternError {
  return new PosternError(400, 'invalid_request', `${what} is not possible at this step.`, {
    detail: `${what} out of order`,
  });
}

export const accountExists = () =>
  new PosternError(409, 'account_exists', 'An account with this email already exists. Sign in instead.');
