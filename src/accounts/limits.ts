/**
 * Rate limits by rule, shared by every route that counts attempts: one
 * limiter per rule name, made at first use (composing the app asks nothing
 * of the store). A refusal is a 429 with Retry-After; the moment a limit
 * trips is reported once per window (`onTrip`), so a flood does not turn
 * into as many audit rows.
 */
import { rateLimited } from '../errors.ts';
import type { EphemeralStore, RateLimitDecision, RateLimiter, RateLimitRule } from '../storage/types.ts';

export interface Limits {
  /** Counts one attempt. @throws {PosternError} 429 rate_limited when the rule has no attempt left. */
  enforce(rule: RateLimitRule, key: string, onTrip?: () => void): Promise<void>;
  /** For rules that count failures only: refuses while none is left, without counting. @throws {PosternError} 429. */
  check(rule: RateLimitRule, key: string): Promise<void>;
  /** Counts one failure of a rule `check` guards; `onTrip` when it used up the last attempt. */
  countFailure(rule: RateLimitRule, key: string, onTrip?: () => void): Promise<void>;
  reset(rule: RateLimitRule, key: string): Promise<void>;
  consume(rule: RateLimitRule, key: string): Promise<RateLimitDecision>;
}

export function createLimits(ephemeral: Pick<EphemeralStore, 'rateLimiter'>): Limits {
  const limiters = new Map<string, RateLimiter>();
  const limiterFor = (rule: RateLimitRule) => {
    let limiter = limiters.get(rule.name);
    if (!limiter) {
      limiter = ephemeral.rateLimiter(rule);
      limiters.set(rule.name, limiter);
    }
    return limiter;
  };
  const limits: Limits = {
    consume: (rule, key) => limiterFor(rule).consume(key),
    async enforce(rule, key, onTrip) {
      const decision = await limiterFor(rule).consume(key);
      if (decision.allowed) return;
      if (decision.firstRefusal) onTrip?.();
      throw rateLimited(decision.retryAfterSeconds);
    },
    async check(rule, key) {
      const decision = await limiterFor(rule).peek(key);
      if (!decision.allowed) throw rateLimited(decision.retryAfterSeconds);
    },
    async countFailure(rule, key, onTrip) {
      const decision = await limiterFor(rule).consume(key);
      if (decision.allowed && decision.remaining === 0) onTrip?.();
    },
    reset: (rule, key) => limiterFor(rule).reset(key),
  };
  return limits;
}
