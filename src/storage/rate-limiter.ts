/**
 * Adapts rate-limiter-flexible to the store's RateLimiter: a refusal is a
 * decision, not an exception; a store failure is StoreUnavailableError, so
 * limits fail closed like everything else.
 */
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { StoreUnavailableError } from './errors.ts';
import type { RateLimitDecision, RateLimiter } from './types.ts';

export function adaptRateLimiter(limiter: RateLimiterAbstract, service: 'database' | 'redis'): RateLimiter {
  const decide = (result: RateLimiterRes, allowed: boolean): RateLimitDecision => ({
    allowed,
    remaining: result.remainingPoints,
    firstRefusal: !allowed && result.consumedPoints === limiter.points + 1,
    retryAfterSeconds: Math.ceil(result.msBeforeNext / 1000),
  });
  return {
    async consume(key) {
      try {
        return decide(await limiter.consume(key), true);
      } catch (error) {
        if (error instanceof RateLimiterRes) return decide(error, false);
        throw new StoreUnavailableError(service, { cause: error });
      }
    },
    async peek(key) {
      let result: RateLimiterRes | null;
      try {
        result = await limiter.get(key);
      } catch (error) {
        throw new StoreUnavailableError(service, { cause: error });
      }
      if (!result)
        return { allowed: true, remaining: limiter.points, firstRefusal: false, retryAfterSeconds: 0 };
      const allowed = result.consumedPoints < limiter.points;
      return {
        allowed,
        remaining: Math.max(0, limiter.points - result.consumedPoints),
        firstRefusal: false,
        retryAfterSeconds: allowed ? 0 : Math.ceil(result.msBeforeNext / 1000),
      };
    },
    async reset(key) {
      try {
        await limiter.delete(key);
      } catch (error) {
        throw new StoreUnavailableError(service, { cause: error });
      }
    },
  };
}
