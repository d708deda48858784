/** The in-process ephemeral store against the shared conformance suite. */
import test from 'ava';
import { openMemoryEphemeralStore } from '../../src/storage/memory/memory-ephemeral-store.ts';
import { registerEphemeralConformance } from './ephemeral-conformance.ts';

registerEphemeralConformance(test, 'memory', async () => openMemoryEphemeralStore());
