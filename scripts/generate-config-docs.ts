/** `npm run docs`: regenerates the README's configuration reference from the schema. */
import { readFile, writeFile } from 'node:fs/promises';
import { withConfigReference } from '../src/config/config-reference.ts';

const path = new URL('../README.md', import.meta.url);
const before = await readFile(path, 'utf8');
const after = withConfigReference(before);
await writeFile(path, after);
console.log(
  before === after
    ? 'README configuration reference is up to date.'
    : 'README configuration reference regenerated.',
);
