/** Counters the login flow adds to /metrics: how the passkey offer fares. */
import { Counter, type Registry } from 'prom-client';

export interface LoginMetrics {
  /** outcome: shown, accepted, accepted_conditional (created without a prompt), skipped. */
  passkeyOffers: Counter<'pool' | 'outcome'>;
}

export function createLoginMetrics(registry: Registry): LoginMetrics {
  return {
    passkeyOffers: new Counter({
      name: 'postern_passkey_offers_total',
      help: 'Offers to create a passkey after a sign-in without one, by outcome',
      labelNames: ['pool', 'outcome'] as const,
      registers: [registry],
    }),
  };
}
