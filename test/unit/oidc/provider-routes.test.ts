import test from 'ava';
import { providerRouteOf } from '../../../src/oidc/provider-routes.ts';

test('a path names the oidc-provider endpoint its router would run: any letter case, one trailing slash', (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['/auth', 'authorization'],
    ['/AUTH', 'authorization'],
    ['/Auth/', 'authorization'],
    ['/auth//', undefined],
    ['/auth/abc123', 'resume'],
    ['/AUTH/abc123/', 'resume'],
    ['/auth/abc/def', undefined],
    ['/Session/End', 'end_session'],
    ['/session/END/confirm', 'end_session_confirm'],
    ['/session/end/success/', 'end_session_success'],
    ['/TOKEN/Introspection', 'introspection'],
    ['/.WELL-KNOWN/openid-configuration', 'discovery'],
    ['/request', 'pushed_authorization_request'],
    // oidc-provider never folds a non-ASCII letter into an ASCII one.
    ['/ſession/end', undefined],
    ['/session%2Fend', undefined],
    ['/', undefined],
    ['/interaction/abc', undefined],
    ['/constructor', undefined],
  ];
  for (const [path, name] of cases) t.is(providerRouteOf(path)?.name, name, path);
});
