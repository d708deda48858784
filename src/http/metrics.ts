/**
 * Prometheus metrics. Each app gets its own registry (tests build many apps);
 * later features register their counters on it. Routes are labelled by their
 * pattern (`/:pool/token`), never by the raw path, to keep cardinality bounded.
 */
import type { Middleware } from 'koa';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  /**
   * The text /metrics answers: this registry's, or every worker's when clustered (replaceable).
   * @throws {PosternError} clustered: 503 `metrics_unavailable` when a worker did not answer in time.
   */
  exposition(): Promise<string>;
}

export function createMetrics({ processMetrics = false }: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (processMetrics) collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: 'postern_http_request_duration_seconds',
    help: 'HTTP request durations by route pattern, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    registry,
    httpDuration,
    exposition: () => registry.metrics(),
  };
}

/** Times each request; the route label comes from `ctx.state.route`, set by whoever matched it. */
export function measureRequests(metrics: Metrics): Middleware<{ route?: string }> {
  return async (ctx, next) => {
    const end = metrics.httpDuration.startTimer();
    try {
      await next();
    } finally {
      const route = ctx.state.route ?? (ctx.status === 404 ? 'unmatched' : 'other');
      end({
        method: ctx.method,
        route,
        status: String(ctx.respond === false ? ctx.res.statusCode : ctx.status),
      });
    }
  };
}
