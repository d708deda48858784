/**
 * The closed-loop load generator: `concurrency` virtual users, each running
 * one flow after another (the next starts when the previous ends) until the
 * window closes. Closed loop on purpose: the server's throughput and latency
 * at that concurrency are what is measured, never a queue of requests the
 * bench fired faster than the server answers.
 */
import { performance } from 'node:perf_hooks';

export interface LoadResult {
  /** Flows that completed, successful or not. */
  flows: number;
  errors: number;
  /** Latency of each successful flow, in milliseconds. */
  latenciesMs: number[];
  /** From the first start to the last flow's end (flows begun before the deadline finish). */
  elapsedMs: number;
  /** A few distinct error messages, to print. */
  errorSamples: string[];
}

export interface LoadOptions {
  concurrency: number;
  durationMs: number;
  /** One flow; `slot` is the virtual user's index (0 … concurrency-1). Throws when the flow fails. */
  flow(slot: number): Promise<void>;
}

export async function runClosedLoop({ concurrency, durationMs, flow }: LoadOptions): Promise<LoadResult> {
  const result: LoadResult = { flows: 0, errors: 0, latenciesMs: [], elapsedMs: 0, errorSamples: [] };
  const samples = new Set<string>();
  const started = performance.now();
  const deadline = started + durationMs;
  const virtualUser = async (slot: number) => {
    while (performance.now() < deadline) {
      const begun = performance.now();
      try {
        await flow(slot);
        result.latenciesMs.push(performance.now() - begun);
      } catch (error) {
        result.errors += 1;
        const message = error instanceof Error ? error.message : String(error);
        if (samples.size < 5) samples.add(message.slice(0, 300));
      }
      result.flows += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, slot) => virtualUser(slot)));
  result.elapsedMs = performance.now() - started;
  result.errorSamples = [...samples];
  return result;
}

/** The `fraction` quantile (0 … 1) of `values`, nearest rank; NaN when empty. */
export function quantile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank] as number;
}
