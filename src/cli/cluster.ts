/**
 * `serve --workers N`: one process per core (node:cluster), all sharing the
 * listening port, PostgreSQL and Redis; no state lives in a process, so any
 * worker finishes a login another began.
 *
 * The primary only supervises: it forks the workers, replaces one that dies
 * after it started (a worker that fails while starting stops the whole
 * server, since its siblings would fail the same way), forwards shutdown
 * signals, and answers /metrics for the cluster: a worker asked for metrics
 * relays to the primary, which gathers every worker's registry (prom-client's
 * AggregatorRegistry) so Prometheus sees one consistent set.
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../logging/create-logger.ts';

const METRICS_REQUEST = 'postern:metrics';
const METRICS_REPLY = 'postern:metrics-reply';
const READY = 'postern:ready';

type Message = { type?: string; id?: string; text?: string };

/** In the primary: fork and supervise. Resolves with the exit code when every worker has gone. */
export function superviseWorkers(workers: number, logger: Logger): Promise<number> {
  const aggregator = new AggregatorRegistry();
  const started = new Set<number>();
  let stopping = false;
  let exitCode = 0;

  return new Promise((resolve) => {
    cluster.on('message', (worker, message: Message) => {
      if (message?.type === READY) started.add(worker.id);
      if (message?.type !== METRICS_REQUEST) return;
      aggregator.clusterMetrics().then(
        (text) => worker.send({ type: METRICS_REPLY, id: message.id, text }),
        (error) => {
          logger.warn({ err: error }, 'gathering cluster metrics failed');
          worker.send({ type: METRICS_REPLY, id: message.id, text: '' });
        },
      );
    });

    cluster.on('exit', (worker, code, signal) => {
      const wasStarted = started.delete(worker.id);
      if (!stopping && wasStarted) {
        logger.error({ worker: worker.process.pid, code, signal }, 'worker died; starting a replacement');
        cluster.fork();
        return;
      }
      if (!stopping) {
        // A worker that could not start: its siblings cannot either.
        exitCode = code || 1;
        stop('SIGTERM');
      }
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve(exitCode);
    });

    const stop = (signal: NodeJS.Signals) => {
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGTERM'));

    for (let i = 0; i < workers; i++) cluster.fork();
  });
}

/** In a worker: tells the primary it is serving. */
export function reportWorkerReady(): void {
  process.send?.({ type: READY });
}

/** In a worker: a /metrics exposition that asks the primary for the whole cluster's. */
export function clusterExposition(registry: Registry): () => Promise<string> {
  // Constructing one installs prom-client's worker-side listener; setRegistries picks what it reports.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  const pending = new Map<string, (text: string) => void>();
  process.on('message', (message: Message) => {
    if (message?.type !== METRICS_REPLY || !message.id) return;
    pending.get(message.id)?.(message.text ?? '');
    pending.delete(message.id);
  });
  return () =>
    new Promise((resolve) => {
      const id = randomUUID();
      pending.set(id, resolve);
      process.send?.({ type: METRICS_REQUEST, id });
      setTimeout(() => {
        if (pending.delete(id)) resolve(''); // the primary did not answer; never hang a scrape
      }, 5000).unref();
    });
}
