#!/usr/bin/env node
// The `postern` command. Postern is written in TypeScript and run through tsx,
// so a fresh clone needs only `npm install`: there is no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
