/**
 * Postern's error pages and the pages oidc-provider shows for a pool, all
 * rendered with views/error.eta (and logout*.eta). An error page says what
 * happened in a sentence the user can act on and, where the sign-in cannot
 * go on (expired, cancelled, not found), the way back to the app: the app of
 * the request when it is known, else the pool's only app, else a sentence
 * telling the user to return to the app they came from.
 */
import { ACCOUNT_CLIENT_ID } from '../config/account-client.ts';
import type { PoolConfig } from '../config/types.ts';
import type { Logger } from '../logging/create-logger.ts';
import type { ProviderPages } from '../oidc/create-provider.ts';
import { type AppLink, appLinkOf, soleAppLinkOf } from './app-link.ts';
import type { ErrorView } from './error-handler.ts';
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

const EXPIRED =
  'This sign-in has expired or was opened in another browser. Return to the app and sign in again.';
const UNAVAILABLE = 'Sign-in is briefly unavailable. Please try again in a moment.';

/** Errors after which the user can only start again from the app. */
const DEAD_ENDS = new Set(['interaction_expired', 'not_found', 'access_denied']);

/** The data views/error.eta takes. */
type ErrorPage = {
  poolName: string | undefined;
  status: number;
  error: string;
  heading: string;
  description: string;
  requestId: string;
  /** The app to return to, if known. */
  app?: AppLink;
  /** No app known: tell the user to go back to where they came from. */
  startAgain: boolean;
};

function errorPage(
  view: ErrorView,
  { poolName, app }: { poolName: string | undefined; app: AppLink | undefined },
): ErrorPage {
  const heading =
    view.status >= 500
      ? 'Something went wrong'
      : view.error === 'interaction_expired'
        ? 'This sign-in has expired'
        : view.error === 'not_found'
          ? 'Page not found'
          : view.error === 'access_denied'
            ? 'Sign-in cancelled'
            : 'That did not work';
  const deadEnd = DEAD_ENDS.has(view.error);
  return {
    poolName,
    ...view,
    heading,
    ...(app ? { app } : {}),
    startAgain: deadEnd && !app,
  };
}

/**
 * The error page of Postern's own routes, for `errorHandler`. Under a pool's
 * path the pool names the page and its only app is the way back (an expired
 * sign-in no longer knows its client); outside any pool, the paths are the
 * demo app's (src/demo/) when it is configured.
 */
export function createErrorPage(
  render: Render,
  pools: readonly PoolConfig[],
): (view: ErrorView, url: string) => string {
  const demo = pools.find((pool) => pool.id === 'demo');
  const demoApp = demo ? appLinkOf(demo, 'demo-app') : undefined;
  return (view, url) => {
    const poolId = /^\/([a-z0-9-]+)(?:[/?#]|$)/.exec(url)?.[1];
    const pool = pools.find((candidate) => candidate.id === poolId);
    const shown =
      view.error === 'access_denied'
        ? { ...view, description: 'The sign-in was cancelled, so you are not signed in.' }
        : view;
    return render(
      'error',
      errorPage(shown, {
        poolName: pool?.display_name,
        app: pool ? soleAppLinkOf(pool) : demoApp,
      }),
    );
  };
}

/** Whether the account page's own client asks: it is the user's page, not an app asking for them. */
function isAccountPage(pool: PoolConfig, clientName: string | undefined): boolean {
  if (clientName === undefined) return false;
  const named = pool.clients.filter((client) => (client.client_name ?? client.client_id) === clientName);
  return named.length > 0 && named.every((client) => client.client_id === ACCOUNT_CLIENT_ID);
}

export function createProviderPages(render: Render, logger: Logger) {
  return (pool: PoolConfig): ProviderPages => ({
    error(req, { error, description, status }) {
      const { id } = requestContextOf(req, logger);
      const unavailable = status === 503;
      // The resume route (/auth/{uid}, the prefix stripped) fails only when the sign-in is gone.
      const url = new URL(req.url ?? '/', 'http://pool.invalid');
      const expired = !unavailable && error === 'invalid_request' && /^\/auth\/[^/]+$/.test(url.pathname);
      const clientId = url.searchParams.get('client_id');
      // A registered client's app is linked even when its request was refused: the link is the pool file's.
      const app =
        (clientId ? appLinkOf(pool, clientId) : undefined) ?? (expired ? soleAppLinkOf(pool) : undefined);
      const view: ErrorView = {
        status,
        error: unavailable ? 'temporarily_unavailable' : expired ? 'interaction_expired' : error,
        description: unavailable
          ? UNAVAILABLE
          : expired
            ? EXPIRED
            : (USER_FACING[error] ?? description ?? 'The request could not be completed.'),
        requestId: id,
      };
      return render('error', errorPage(view, { poolName: pool.display_name, app }));
    },
    logout(_req, { form, clientName }) {
      return render('logout', {
        poolName: pool.display_name,
        form,
        clientName: isAccountPage(pool, clientName) ? undefined : clientName,
      });
    },
    logoutSuccess(_req, { clientName }) {
      return render('logout-success', {
        poolName: pool.display_name,
        clientName: isAccountPage(pool, clientName) ? undefined : clientName,
      });
    },
  });
}
