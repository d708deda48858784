import { readFile } from 'node:fs/promises';
import test from 'ava';
import { withConfigReference } from '../../../src/config/config-reference.ts';
import { ServerFileSchema } from '../../../src/config/schema.ts';

test('the README’s configuration reference is generated from the current schema (run `npm run docs`)', async (t) => {
  const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
  t.is(readme, withConfigReference(readme));
});

test('the reference lists every server key with its default', async (t) => {
  const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
  for (const key of Object.keys(ServerFileSchema.shape)) t.regex(readme, new RegExp(`\\| \`${key}`), key);
  t.regex(readme, /\| `passkeys\.timeout` \| `5m` \|/);
});
