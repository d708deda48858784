/**
 * `serve --workers N`: one process per core (node:cluster), all sharing the
 * listening port, PostgreSQL and Redis; no state lives in a process, so any
 * worker finishes a login another began.
 *
 * The primary only supervises: it forks the workers, replaces one that dies
 * after it started (a worker that fails while starting stops the whole
 * server, since its siblings would fail the same way), forwards shutdown
 * signals, and answers /metrics for the cluster.
 *
 * Cluster metrics: a worker asked for /metrics relays to the primary, which
 * asks every worker that has reported ready (and the one asking) for its
 * registry over IPC, waits for each at most WORKER_METRICS_TIMEOUT_MS, and
 * sums them (prom-client's AggregatorRegistry.aggregate) with its own
 * `postern_cluster_workers_ready` gauge, so Prometheus sees one set.
 * A worker still starting is not asked: it has served nothing, and a message
 * sent before it listens for one is lost. If a ready worker does not answer
 * in time the scrape fails with 503 `metrics_unavailable`: a sum without it
 * would make its counters go down, which Prometheus reads as a reset, while a
 * failed scrape is only a gap.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import { errorOf } from '../errors.ts';
import type { Logger } from '../logging/create-logger.ts';

/**
 * How long the primary waits for each ready worker's registry. Well under
 * Prometheus's default scrape_timeout (10 s); a worker answers in
 * milliseconds unless its event loop is stuck.
 */
export const WORKER_METRICS_TIMEOUT_MS = 3000;
/** How long a worker waits for the primary: longer, so the primary's verdict always arrives first. */
const PRIMARY_METRICS_TIMEOUT_MS = WORKER_METRICS_TIMEOUT_MS + 2000;

const READY = 'postern:ready';
/** worker → primary: a scrape arrived, send me the cluster's metrics. */
const METRICS_REQUEST = 'postern:metrics';
/** primary → worker: the answer to METRICS_REQUEST (`text`, or `missing` of `asked` workers, or `error`). */
const METRICS_REPLY = 'postern:metrics-reply';
/** primary → worker: send me your registry. */
const COLLECT = 'postern:metrics-collect';
/** worker → primary: the answer to COLLECT (`metrics`, or `error`). */
const REGISTRY = 'postern:metrics-registry';

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
type Message = {
  type?: string;
  id?: string;
  text?: string;
  missing?: number;
  asked?: number;
  metrics?: MetricsJson;
  error?: string;
};

/** A worker's registry, `undefined` when it did not answer in time, `'gone'` when it exited meanwhile. */
type Answer = MetricsJson | undefined | 'gone';

/** In the primary: fork and supervise. Resolves with the exit code when every worker has gone. */
export function superviseWorkers(workers: number, logger: Logger): Promise<number> {
  const started = new Set<number>();
  const collector = createCollector(started, logger);
  let stopping = false;
  let exitCode = 0;
  // Counted here, not read from cluster.workers: Node drops a worker from that
  // list only once it both exited and disconnected, which may come after its
  // 'exit' event, and a last exit seen with the worker still listed would
  // leave this promise pending forever (the process then ends with code 13).
  let alive = 0;
  const fork = () => {
    alive++;
    cluster.fork();
  };

  return new Promise((resolve) => {
    cluster.on('message', (worker, message: Message) => {
      if (message?.type === READY) started.add(worker.id);
      if (message?.type === REGISTRY) collector.received(worker, message);
      if (message?.type === METRICS_REQUEST && message.id) collector.answer(worker, message.id);
    });

    cluster.on('exit', (worker, code, signal) => {
      alive--;
      collector.gone(worker);
      const wasStarted = started.delete(worker.id);
      if (!stopping && wasStarted) {
        logger.error({ worker: worker.process.pid, code, signal }, 'worker died; starting a replacement');
        fork();
        return;
      }
      if (!stopping) {
        // A worker that could not start: its siblings cannot either.
        exitCode = code || 1;
        stop('SIGTERM');
      }
      if (alive === 0) resolve(exitCode);
    });

    const stop = (signal: NodeJS.Signals) => {
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGTERM'));

    for (let i = 0; i < workers; i++) fork();
  });
}

/** The primary's side of cluster metrics: asks the ready workers, waits (bounded), sums. */
function createCollector(started: ReadonlySet<number>, logger: Logger) {
  const own = new Registry();
  new Gauge({
    name: 'postern_cluster_workers_ready',
    help: 'Worker processes serving requests (started and not exited)',
    registers: [own],
    collect() {
      this.set(started.size);
    },
  });
  /** Per collection id, the workers still owing an answer. */
  const owed = new Map<string, Map<number, (answer: Answer) => void>>();

  const ask = (worker: Worker, id: string): Promise<Answer> =>
    new Promise((settle) => {
      owed.get(id)?.set(worker.id, settle);
      worker.send({ type: COLLECT, id }, (error: Error | null) => {
        if (error) settle('gone'); // its channel closed: it is leaving the cluster
      });
    });

  async function collect(requester: Worker): Promise<Message> {
    const id = randomUUID();
    owed.set(id, new Map());
    const asked = Object.values(cluster.workers ?? {}).filter(
      (worker): worker is Worker =>
        worker?.isConnected() === true && (started.has(worker.id) || worker.id === requester.id),
    );
    const timer = setTimeout(() => {
      for (const settle of owed.get(id)?.values() ?? []) settle(undefined);
    }, WORKER_METRICS_TIMEOUT_MS);
    try {
      const answers = await Promise.all(asked.map((worker) => ask(worker, id)));
      const silent = asked.filter((_, index) => answers[index] === undefined);
      if (silent.length > 0) {
        logger.warn(
          { workers: silent.map((worker) => worker.process.pid), timeout_ms: WORKER_METRICS_TIMEOUT_MS },
          'cluster metrics: a worker did not send its metrics in time; answering 503',
        );
        return { missing: silent.length, asked: asked.length };
      }
      const registries = answers.filter((answer): answer is MetricsJson => Array.isArray(answer));
      const text = await AggregatorRegistry.aggregate([
        ...registries,
        await own.getMetricsAsJSON(),
      ]).metrics();
      return { text };
    } finally {
      clearTimeout(timer);
      owed.delete(id);
    }
  }

  return {
    /** A worker relayed a scrape: answer it with the cluster's metrics, or how many workers were missing. */
    answer(requester: Worker, id: string): void {
      collect(requester).then(
        (reply) => tell(requester, { type: METRICS_REPLY, id, ...reply }),
        (error: unknown) => {
          logger.warn({ err: error }, 'gathering cluster metrics failed');
          tell(requester, { type: METRICS_REPLY, id, error: 'summing failed' });
        },
      );
    },
    /** A worker sent its registry (or could not). */
    received(worker: Worker, message: Message): void {
      const settle = message.id ? owed.get(message.id)?.get(worker.id) : undefined;
      if (!settle) return; // late: that collection already gave up on it
      owed.get(message.id as string)?.delete(worker.id);
      if (message.error)
        logger.warn({ worker: worker.process.pid, error: message.error }, 'worker metrics failed');
      settle(message.error ? undefined : message.metrics);
    },
    /** A worker exited: it owes nothing any more, and its counters leave the sum. */
    gone(worker: Worker): void {
      for (const pending of owed.values()) {
        pending.get(worker.id)?.('gone');
        pending.delete(worker.id);
      }
    },
  };
}

/** Sends to a worker that may have left meanwhile (then there is no one to tell). */
function tell(worker: Worker, message: Message): void {
  if (worker.isConnected()) worker.send(message, () => {});
}

/** In a worker: tells the primary it is serving. */
export function reportWorkerReady(): void {
  process.send?.({ type: READY });
}

/** The 503 a scrape gets when the cluster's metrics cannot be summed whole. */
const metricsUnavailable = (detail: string) => errorOf('metrics_unavailable', { detail });

/**
 * In a worker: answers the primary's requests for this worker's registry, and
 * returns a /metrics exposition that asks the primary for the whole cluster's.
 * Call it before the server listens, so the primary's first request finds it.
 * @throws {PosternError} (from the exposition) 503 `metrics_unavailable` when
 *   a ready worker, or the primary, did not answer in time.
 */
export function clusterExposition(registry: Registry): () => Promise<string> {
  const pending = new Map<string, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: Message) => {
    if (message?.type === COLLECT && message.id) {
      const { id } = message;
      registry.getMetricsAsJSON().then(
        (metrics) => process.send?.({ type: REGISTRY, id, metrics }),
        (error: unknown) => process.send?.({ type: REGISTRY, id, error: String(error) }),
      );
      return;
    }
    if (message?.type !== METRICS_REPLY || !message.id) return;
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    if (message.text !== undefined) waiting?.resolve(message.text);
    else
      waiting?.reject(
        metricsUnavailable(message.error ?? `${message.missing} of ${message.asked} workers did not answer`),
      );
  });
  // A 'message' listener makes the IPC channel hold the process open; it must
  // not: a worker whose startup fails has to exit, as a lone process does, so
  // the primary sees it and stops. A serving worker is held by its server.
  process.channel?.unref();

  return () =>
    new Promise((resolve, reject) => {
      const id = randomUUID();
      pending.set(id, { resolve, reject });
      process.send?.({ type: METRICS_REQUEST, id });
      setTimeout(() => {
        if (pending.delete(id)) reject(metricsUnavailable('the primary did not answer')); // never hang a scrape
      }, PRIMARY_METRICS_TIMEOUT_MS).unref();
    });
}
