/** The pages oidc-provider shows for a pool, rendered with Postern's templates. */

import type { PoolConfig } from '../config/types.ts';
import type { Logger } from '../logging/create-logger.ts';
import type { ProviderPages } from '../oidc/create-provider.ts';
import type { Render } from './render.ts';
import { requestContextOf } from './request-context.ts';

/** Descriptions oidc-provider writes for developers; users get a sentence they can act on. */
const USER_FACING: Record<string, string> = {
  invalid_request: 'The app that sent you here made a request we cannot accept.',
  invalid_client: 'The app that sent you here is not registered with us.',
  invalid_redirect_uri: 'The app that sent you here asked to return to an address it did not register.',
  unauthorized_client: 'The app that sent you here is not allowed to make this request.',
  server_error: 'Something went wrong on our side.',
};

export function createProviderPages(render: Render, logger: Logger) {
  return (pool: PoolConfig): ProviderPages => ({
    error(req, { error, description, status }) {
      const { id } = requestContextOf(req, logger);
      const unavailable = status === 503;
      return render('error', {
        poolName: pool.display_name,
        status,
        error: unavailable ? 'temporarily_unavailable' : error,
        description: unavailable
          ? 'Sign-in is briefly unavailable. Please try again in a moment.'
          : (USER_FACING[error] ?? description ?? 'The request could not be completed.'),
        requestId: id,
      });
    },
    logout(_req, { form, clientName }) {
      return render('logout', { poolName: pool.display_name, form, clientName });
    },
    logoutSuccess(_req, { clientName }) {
      return render('logout-success', { poolName: pool.display_name, clientName });
    },
  });
}
