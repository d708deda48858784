import test from 'ava';
import {
  ACR_VALUES,
  acrClaimFor,
  acrMeets,
  isAcr,
  requestedAcrValues,
  requiredAcr,
} from '../../../src/oidc/acr.ts';

test('phrh meets phr, and nothing but a passkey meets either', (t) => {
  t.true(acrMeets('phrh', 'phr'));
  t.true(acrMeets('phr', 'phr'));
  t.false(acrMeets('phr', 'phrh'));
  t.false(acrMeets('0', 'phr'));
  t.false(acrMeets(undefined, 'phr'));
  t.false(acrMeets('urn:other', 'phr'));
});

test('the required class comes from acr_values, an essential acr claim, or the client default', (t) => {
  t.is(requiredAcr({ acrValues: 'phr' }), 'phr');
  t.is(requiredAcr({ acrValues: 'phrh phr' }), 'phr', 'the weakest acceptable one');
  t.is(requiredAcr({ acrValues: 'phrh' }), 'phrh');
  t.is(requiredAcr({ acrValues: 'phr 0' }), undefined, '0 accepted: nothing required');
  t.is(requiredAcr({ acrValues: 'urn:mace:incommon:iap:silver' }), undefined, 'unknown values are advisory');
  t.is(
    requiredAcr({ claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'phrh' } } }) }),
    'phrh',
  );
  t.is(
    requiredAcr({ claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['phr'] } } }) }),
    'phr',
  );
  t.is(
    requiredAcr({ claims: JSON.stringify({ id_token: { acr: { value: 'phrh' } } }) }),
    undefined,
    'a voluntary claim is advisory',
  );
  t.is(requiredAcr({ defaultAcrValues: ['phr'] }), 'phr');
  t.is(
    requiredAcr({ acrValues: '0', defaultAcrValues: ['phr'] }),
    'phr',
    'a request cannot lower the client default',
  );
  t.is(requiredAcr({ acrValues: 'phrh', defaultAcrValues: ['phr'] }), 'phrh', 'but it can raise it');
  t.is(
    requiredAcr({
      acrValues: 'phrh',
      claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:x'] } } }),
    }),
    'phrh',
    'an essential claim of unknown values does not hide acr_values',
  );
  for (const acr of [
    { essential: true, values: 'phrh' },
    { essential: true, values: {} },
    'phrh',
    null,
    { essential: 'yes', value: 'phrh' },
  ]) {
    t.is(
      requiredAcr({ claims: JSON.stringify({ id_token: { acr } }) }),
      undefined,
      `malformed: ${JSON.stringify(acr)}`,
    );
  }
  t.is(requiredAcr({ claims: 'null' }), undefined);
  t.is(requiredAcr({}), undefined);
});

test('the acr asserted is the first requested class the login meets, else what was done', (t) => {
  t.is(acrClaimFor('phrh', ['phr']), 'phr', 'a device-bound passkey asked for phr says phr');
  t.is(acrClaimFor('phrh', ['phrh', 'phr']), 'phrh', 'in the request’s order of preference');
  t.is(acrClaimFor('phr', ['phrh', 'phr']), 'phr');
  t.is(acrClaimFor('phrh', []), 'phrh', 'nothing asked: what was done');
  t.is(acrClaimFor('0', ['phr']), '0', 'never more than was done');
  t.is(acrClaimFor('phr', ['0']), '0');
  t.deepEqual(
    requestedAcrValues({
      acrValues: 'phrh',
      claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:x', 'phr'] } } }),
    }),
    ['phr'],
    'an essential claim comes first; unknown values drop out',
  );
});

test('the classes Postern asserts are exactly the ones it recognises, strongest first', (t) => {
  t.deepEqual([...ACR_VALUES], ['phrh', 'phr', '0']);
  for (const value of ACR_VALUES) t.true(isAcr(value), value);
  for (const value of ['PHR', 'phr ', '1', 0, undefined, 'urn:other']) t.false(isAcr(value), String(value));
  for (const [stronger, weaker] of [
    ['phrh', 'phr'],
    ['phr', '0'],
  ] as const)
    t.true(acrMeets(stronger, weaker) && !acrMeets(weaker, stronger));
});
