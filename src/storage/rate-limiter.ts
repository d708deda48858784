/**
 * Adapts rate-limiter-flexible to the store's RateLimiter: a refusal is a
 * decision, not an exception; a store failure is StoreUnavailableError, so
 * limits fail closed like everything else.
 */
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { StoreUnavailableError } from './errors.ts';
import type { RateLimitDecision, RateLimiter } from './types.ts';

/**
 * @param guard (Optional) Runs each call to the limiter's store, and may
 *   refuse it with StoreUnavailableError (Redis's stall guard). Defaults to
 *   running it.
 */
export function adaptRateLimiter(
  limiter: RateLimiterAbstract,
  service: 'database' | 'redis',
  guard: <T>(run: () => Promise<T>) => Promise<T> = (run) => run(),
): RateLimiter {
  const unavailable = (error: unknown) =>
    error instanceof StoreUnavailableError ? error : new StoreUnavailableError(service, { cause: error });
  const decide = (result: RateLimiterRes, allowed: boolean): RateLimitDecision => ({
    allowed,
    remaining: result.remainingPoints,
    firstRefusal: !allowed && result.consumedPoints === limiter.points + 1,
    retryAfterSeconds: Math.ceil(result.msBeforeNext / 1000),
  });
  return {
    async consume(key) {
      try {
        return decide(await guard(() => limiter.consume(key)), true);
      } catch (error) {
        if (error instanceof RateLimiterRes) return decide(error, false);
        throw unavailable(error);
      }
    },
    async peek(key) {
      let result: RateLimiterRes | null;
      try {
        result = await guard(() => limiter.get(key));
      } catch (error) {
        throw unavailable(error);
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
        await guard(() => limiter.delete(key));
      } catch (error) {
        throw unavailable(error);
      }
    },
  };
}
