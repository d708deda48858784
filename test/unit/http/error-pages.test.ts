/**
 * Where the error pages send the user back to (src/http/app-link.ts,
 * src/http/provider-pages.ts): only to apps the pool file registered, the
 * request's own app when it is known, else the pool's only app, else a
 * sentence telling the user to start again from the app they came from.
 */
import type { IncomingMessage } from 'node:http';
import test from 'ava';
import { withAccountClient } from '../../../src/config/account-client.ts';
import { PoolFileSchema } from '../../../src/config/schema.ts';
import { type PoolConfig, resolvePool } from '../../../src/config/types.ts';
import { appLinkOf, soleAppLinkOf } from '../../../src/http/app-link.ts';
import { createErrorPage, createProviderPages } from '../../../src/http/provider-pages.ts';
import { createRenderer } from '../../../src/http/render.ts';
import { testLogger } from '../../support/postern-server.ts';

const PUBLIC_URL = 'https://id.acme.example';

function pool(id: string, clients: unknown[]): PoolConfig {
  const file = PoolFileSchema.parse({ display_name: `Acme ${id}`, clients });
  return withAccountClient(resolvePool(id, file, PUBLIC_URL));
}

const shop = pool('shop', [
  { client_id: 'web', client_name: 'Acme Shop', redirect_uris: ['https://shop.acme.example/auth/callback'] },
  { client_id: 'robot', grant_types: ['client_credentials'], client_secret: 'x'.repeat(32), scope: 'admin' },
]);
const several = pool('several', [
  { client_id: 'native', redirect_uris: ['com.acme.app:/callback'] },
  { client_id: 'one', redirect_uris: ['https://one.acme.example/cb'] },
  { client_id: 'two', redirect_uris: ['https://two.acme.example/cb'] },
]);
const render = createRenderer();
const view = (error: string, status = 400) => ({
  status,
  error,
  description: 'Described.',
  requestId: 'r-1',
});
const returnLink = (html: string) =>
  /<a class="button" id="return-to-app" href="([^"]+)">([^<]+)<\/a>/.exec(html);

test('an app is the origin of its first web redirect URI; the account page returns to itself', (t) => {
  t.deepEqual(appLinkOf(shop, 'web'), { name: 'Acme Shop', url: 'https://shop.acme.example/' });
  t.deepEqual(appLinkOf(shop, 'postern-account'), {
    name: 'your account',
    url: `${PUBLIC_URL}/shop/account`,
  });
  t.is(appLinkOf(several, 'native'), undefined, 'a custom scheme is no page to link to');
  t.is(appLinkOf(shop, 'robot'), undefined, 'a machine client has no page');
  t.is(appLinkOf(shop, 'unknown'), undefined);
});

test('a pool’s only app is known; with several there is none', (t) => {
  t.deepEqual(soleAppLinkOf(shop), { name: 'Acme Shop', url: 'https://shop.acme.example/' });
  t.is(soleAppLinkOf(several), undefined);
});

test('an expired sign-in under a pool names the pool and links to its only app', (t) => {
  const page = createErrorPage(render, [shop, several]);
  const html = page(view('interaction_expired'), '/shop/interaction/abc');
  t.regex(html, /<h1>This sign-in has expired<\/h1>/);
  t.regex(html, /<p class="pool">Acme shop<\/p>/);
  t.deepEqual(returnLink(html)?.slice(1), ['https://shop.acme.example/', 'Return to Acme Shop']);
});

test('with several apps, or no pool, the page tells the user to start again from their app', (t) => {
  const page = createErrorPage(render, [shop, several]);
  for (const url of ['/several/interaction/abc', '/nowhere/interaction/abc?x=1']) {
    const html = page(view('not_found', 404), url);
    t.is(returnLink(html), null, url);
    t.regex(html, /Return to the app you came from and start again/, url);
    t.regex(html, /<h1>Page not found<\/h1>/, url);
  }
});

test('a cancelled sign-in at the demo app says so and links back to it', (t) => {
  const demo = pool('demo', [
    { client_id: 'demo-app', client_name: 'Postern Demo App', redirect_uris: [`${PUBLIC_URL}/callback`] },
  ]);
  const html = createErrorPage(render, [demo])(view('access_denied'), '/callback?error=access_denied');
  t.regex(html, /<h1>Sign-in cancelled<\/h1>/);
  t.regex(html, /The sign-in was cancelled, so you are not signed in\./);
  t.deepEqual(returnLink(html)?.slice(1), [`${PUBLIC_URL}/`, 'Return to Postern Demo App']);
});

test('oidc-provider’s pages: a lost sign-in at the resume route is an expired one; a refused client request links to its app', (t) => {
  const pages = createProviderPages(render, testLogger())(shop);
  const req = (url: string) => ({ url, headers: {} }) as IncomingMessage;
  const resumed = pages.error(req('/auth/abc'), {
    error: 'invalid_request',
    description: 'interaction session not found',
    status: 400,
  });
  t.regex(resumed, /<h1>This sign-in has expired<\/h1>/);
  t.regex(resumed, /<code>interaction_expired<\/code>/);
  t.deepEqual(returnLink(resumed)?.slice(1), ['https://shop.acme.example/', 'Return to Acme Shop']);

  const refused = pages.error(req('/auth?client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2F'), {
    error: 'invalid_redirect_uri',
    status: 400,
  });
  t.regex(refused, /<h1>That did not work<\/h1>/);
  t.deepEqual(
    returnLink(refused)?.[1],
    'https://shop.acme.example/',
    'the registered app, never the request’s',
  );

  const unknown = pages.error(req('/auth?client_id=nobody'), { error: 'invalid_client', status: 400 });
  t.is(returnLink(unknown), null);
});

test('the account page’s sign-out is not "your account asked to sign you out"', (t) => {
  const pages = createProviderPages(render, testLogger())(shop);
  const req = { url: '/session/end', headers: {} } as IncomingMessage;
  t.notRegex(pages.logout(req, { form: '', clientName: 'your account' }), /asked to sign you out/);
  t.regex(pages.logout(req, { form: '', clientName: 'Acme Shop' }), /Acme Shop asked to sign you out\./);
});
