import test from 'ava';
import { parseDuration } from '../../../src/config/duration.ts';
import { interpolate } from '../../../src/config/interpolate.ts';

test('substitutes set variables and applies defaults when unset or empty', (t) => {
  const env = { HOST: 'id.acme.example', EMPTY: '' };
  t.deepEqual(interpolate('https://${HOST}/x', env), { value: 'https://id.acme.example/x', missing: [] });
  t.deepEqual(interpolate('${PORT:-3000}', env), { value: '3000', missing: [] });
  t.deepEqual(interpolate('${EMPTY:-fallback}', env), { value: 'fallback', missing: [] });
  t.deepEqual(interpolate('${HOST:-unused}', env), { value: 'id.acme.example', missing: [] });
});

test('reports variables that are unset and have no default', (t) => {
  t.deepEqual(interpolate('${A}-${B}', {}).missing, ['A', 'B']);
  // Set but empty is a value (shell semantics), not a missing variable.
  t.deepEqual(interpolate('${EMPTY}', { EMPTY: '' }), { value: '', missing: [] });
});

test('writes a literal ${ when escaped as $${', (t) => {
  t.deepEqual(interpolate('$${NOT_A_VAR}', {}), { value: '${NOT_A_VAR}', missing: [] });
});

test('parses durations in seconds, minutes, hours and days', (t) => {
  t.is(parseDuration('30s'), 30);
  t.is(parseDuration('5m'), 300);
  t.is(parseDuration('1h'), 3600);
  t.is(parseDuration('2d'), 172_800);
  t.is(parseDuration('45'), 45);
  t.is(parseDuration(90), 90);
  t.is(parseDuration('5 minutes'), undefined);
  t.is(parseDuration('-5m'), undefined);
  t.is(parseDuration(1.5), undefined);
});
