/**
 * Wraps a server's stores so a test can count their round trips: every call
 * of a store method that returns a promise is one (a transaction such as
 * `createWithPasskey` counts once), labelled `durable.users.findAccount`,
 * `ephemeral.oidc.Interaction.find`, `ephemeral.limit.passkey_ip.consume`...
 * Synchronous factories (`oidcModels`, `rateLimiter`) are wrapped, not counted.
 */
import type { DurableStore, EphemeralStore, RateLimitRule } from '../../src/storage/types.ts';

export interface StoreCalls {
  /** Every call so far, in order. */
  readonly calls: string[];
  /** Forgets the calls so far. */
  reset(): void;
}

export function countStoreCalls(stores: { durable: DurableStore; ephemeral: EphemeralStore }) {
  const calls: string[] = [];
  const counted = <T extends object>(
    target: T,
    label: string,
    children: Record<string, (value: unknown, args: unknown[]) => object> = {},
  ): T =>
    new Proxy(target, {
      get(object, property, receiver) {
        const value = Reflect.get(object, property, receiver);
        if (typeof value !== 'function' || typeof property !== 'string') {
          if (value && typeof value === 'object' && typeof property === 'string')
            return counted(value, `${label}.${property}`);
          return value;
        }
        const child = children[property];
        return (...args: unknown[]) => {
          const result = value.apply(object, args);
          if (child) return child(result, args);
          if (result instanceof Promise) calls.push(`${label}.${property}`);
          return result;
        };
      },
    });
  // oidc models are labelled by model name: find(model, id) → `…oidc.Interaction.find`.
  const models = (label: string) => (store: unknown) =>
    new Proxy(store as object, {
      get(object, property, receiver) {
        const value = Reflect.get(object, property, receiver);
        if (typeof value !== 'function' || typeof property !== 'string') return value;
        return (...args: unknown[]) => {
          calls.push(`${label}.${String(args[0])}.${property}`);
          return value.apply(object, args);
        };
      },
    });
  const limiter = (store: unknown, args: unknown[]) =>
    counted(store as object, `ephemeral.limit.${(args[0] as RateLimitRule).name}`);
  const durable = counted(stores.durable, 'durable', { oidcModels: models('durable.oidc') });
  const ephemeral = counted(stores.ephemeral, 'ephemeral', {
    oidcModels: models('ephemeral.oidc'),
    rateLimiter: limiter,
  });
  const record: StoreCalls = {
    calls,
    reset: () => {
      calls.length = 0;
    },
  };
  return { durable, ephemeral, record };
}
