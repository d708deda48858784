/**
 * A stalled Redis (connected, but not answering) costs each command its
 * whole timeout, and a request that makes several in a row would wait for
 * each: three commands, 1.2 s, past the second an answer is promised in
 * (issue 12). So once a command times out, Redis is taken as stalled: every
 * command fails at once until a PING in the background is answered, which
 * clears it. A dropped connection needs none of this: ioredis refuses
 * commands at once while it reconnects (no offline queue).
 */
import type { Redis } from 'ioredis';
import { StoreUnavailableError } from '../errors.ts';

/** ioredis's rejection of a command that got no reply within commandTimeout. */
const isTimeout = (error: unknown) => error instanceof Error && error.message === 'Command timed out';

/** Runs a Redis call, or refuses it at once while Redis is stalled. */
export type StallGuard = <T>(run: () => Promise<T>) => Promise<T>;

export interface StallGuardOptions {
  /** Milliseconds between PINGs while stalled (each waits up to the command timeout). */
  probeEveryMs?: number;
  /** (Optional) Told when a stall begins and ends. */
  onChange?: (stalled: boolean) => void;
}

export function createStallGuard(client: Redis, { probeEveryMs = 100, onChange }: StallGuardOptions = {}) {
  let stalled = false;

  const probe = async () => {
    // A closed client ends the probing: the store is gone.
    while (stalled && client.status !== 'end') {
      try {
        await client.ping();
        stalled = false;
        onChange?.(false);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, probeEveryMs).unref());
      }
    }
  };

  const guard: StallGuard = async (run) => {
    if (stalled)
      throw new StoreUnavailableError('redis', { cause: new Error('Redis is stalled: a command timed out') });
    try {
      return await run();
    } catch (error) {
      if (isTimeout(error) && !stalled) {
        stalled = true;
        onChange?.(true);
        void probe();
      }
      throw error;
    }
  };
  return guard;
}
