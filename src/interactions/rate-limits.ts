/**
 * Limits on the interaction API, per client address and per account email.
 * Generous for people, tight for scripts: a user mistyping a code a few times
 * never meets them; an enumeration or guessing run does, and gets a 429 with
 * Retry-After.
 */
import type { RateLimitRule } from '../storage/types.ts';

export const RATE_LIMITS = {
  /** Identify calls per address: enough for a family behind one NAT, not for a scan. */
  identify_ip: { points: 30, windowSeconds: 60 },
  /** Passkey assertions per address. */
  passkey_ip: { points: 60, windowSeconds: 5 * 60 },
  /** Codes requested from one client address; counted first, so a refusal here spends no email's budget. */
  email_code_send_ip: { points: 20, windowSeconds: 15 * 60 },
  /**
   * Codes mailed to one email for one browser: a known device of the account,
   * else the client address. Like the password limits, an attacker spends
   * their own allowance, not the owner's.
   */
  email_code_send_pair: { points: 5, windowSeconds: 15 * 60 },
  /**
   * Codes mailed to one email from browsers that never signed in to it, across
   * every pool of the server: the cap on mail bombing. The owner's known
   * browsers are not counted here, so a flood cannot lock them out.
   */
  email_code_send_daily: { points: 30, windowSeconds: 24 * 60 * 60 },
  /** Code guesses from one client address, across interactions (each code also allows only 5). */
  email_code_verify_ip: { points: 30, windowSeconds: 15 * 60 },
  /**
   * Wrong codes for one account in a day, from browsers that never signed in
   * to it (a known device has the same allowance of its own): against slow
   * guessing spread over many addresses and codes.
   */
  email_code_wrong_daily: { points: 30, windowSeconds: 24 * 60 * 60 },
  /** Password attempts from one client address, across accounts (per-account limits are the pool's). */
  password_ip: { points: 100, windowSeconds: 15 * 60 },
  /** Recovery code attempts from one client address. */
  recovery_code_ip: { points: 30, windowSeconds: 15 * 60 },
  /** Authenticator app codes tried from one client address (as many as passwords: a routine step). */
  totp_ip: { points: 100, windowSeconds: 15 * 60 },
  /**
   * Authenticator app codes tried for one account, counted before each check
   * and reset by a right one: with three codes valid at a time among a
   * million, 10 a quarter hour keep a day's guessing under 0.3 %.
   */
  totp_user: { points: 10, windowSeconds: 15 * 60 },
  /** Recovery code attempts for one account (codes have 60 bits; this is about noise, not odds). */
  recovery_code_user: { points: 10, windowSeconds: 15 * 60 },
} as const;

/** A limit of RATE_LIMITS as the limiters take it: its name with its points and window. */
export const limitRule = (name: keyof typeof RATE_LIMITS): RateLimitRule => ({ name, ...RATE_LIMITS[name] });
