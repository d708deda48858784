import test from 'ava';
import Provider, { type Account } from 'oidc-provider';
import { confineAccountClaims, widenGrant } from '../../../src/oidc/widen-grant.ts';

// A provider only for its Grant model: nothing is saved.
const { Grant } = new Provider('http://localhost:3000', {});
const newGrant = () => new Grant({ clientId: 'partner', accountId: 'user-1' });
const claimsParameter = (claims: Record<string, unknown>) =>
  JSON.stringify({ id_token: claims, userinfo: claims });

test('a claim outside the granted scopes is refused, and counts as answered', (t) => {
  const grant = newGrant();
  widenGrant(grant, {
    scope: 'openid',
    claims: claimsParameter({ email: null, acr: { essential: true, values: ['phr'] } }),
    allowedScope: 'openid',
  });
  t.is(grant.getOIDCScope(), 'openid');
  t.deepEqual(grant.getOIDCClaims(), ['acr']);
  t.deepEqual(grant.getRejectedOIDCClaims(), ['email']);
  // oidc-provider's consent prompt asks only for claims it has not encountered.
  t.true(grant.getOIDCClaimsEncountered().includes('email'));
});

test('a claim refused once is granted with its scope later', (t) => {
  const grant = newGrant();
  widenGrant(grant, {
    scope: 'openid',
    claims: claimsParameter({ email: null }),
    allowedScope: 'openid email',
  });
  widenGrant(grant, {
    scope: 'openid email',
    claims: claimsParameter({ email: null }),
    allowedScope: 'openid email',
  });
  t.deepEqual(grant.getOIDCScope().split(' ').sort(), ['email', 'openid']);
  t.deepEqual(grant.getOIDCClaims(), ['email']);
  t.deepEqual(grant.getRejectedOIDCClaims(), []);
});

test('scopes the client may not request are not granted', (t) => {
  const grant = newGrant();
  widenGrant(grant, { scope: 'openid email profile', allowedScope: 'openid' });
  t.is(grant.getOIDCScope(), 'openid');
});

test('without a request, a grant written before the rule is confined to its scopes; a confined one is left alone', (t) => {
  const old = newGrant();
  old.addOIDCScope('openid');
  old.addOIDCClaims(['email', 'sub']);
  t.true(widenGrant(old));
  t.deepEqual(old.getOIDCClaims(), ['sub']);
  t.false(widenGrant(old), 'nothing changed the second time: no write');
});

test('a malformed claims parameter asks for nothing, and does not throw', (t) => {
  for (const claims of ['{', '[]', 'null', '{"id_token":5}', '{"id_token":{"email":5}}', 42]) {
    const grant = newGrant();
    t.notThrows(() => widenGrant(grant, { scope: 'openid email', claims, allowedScope: 'openid email' }));
    t.deepEqual(grant.getOIDCClaims(), [], String(claims));
  }
});

test('an account releases only the claims of the scopes it is asked with', async (t) => {
  const account: Account = {
    accountId: 'user-1',
    claims: () => ({ sub: 'user-1', email: 'ada@example.com', email_verified: true, name: 'Ada' }),
  };
  const confined = confineAccountClaims(account);
  t.deepEqual(await confined.claims('userinfo', 'openid', { email: null }, []), { sub: 'user-1' });
  t.deepEqual(await confined.claims('id_token', 'openid email', {}, []), {
    sub: 'user-1',
    email: 'ada@example.com',
    email_verified: true,
  });
});
