/** Retry timing: capped exponential backoff with jitter. */

export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 250 ms. */
  initialDelayMs?: number;
  /** No delay is longer than this. Default 5000 ms. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  multiplier?: number;
  /**
   * Fraction of the delay taken away at random, 0 to 1: the delay is drawn from
   * [base × (1 − jitter), base]. Default 0.5.
   */
  jitter?: number;
}

export interface RetryOptions extends BackoffOptions {
  /**
   * Attempts in all for one request (1 = no retry). Default 10, about 25 s of retrying at the
   * defaults: enough to ride out an API restart. Waits and event streams count consecutive
   * failures against `reconnectAttempts` instead.
   */
  maxAttempts?: number;
  /** Consecutive failed reconnections a wait or an event stream tolerates. Default 30 (about 2 min). */
  reconnectAttempts?: number;
  /** The longest `Retry-After` honoured. Default 30000 ms. */
  maxRetryAfterMs?: number;
}

export type ResolvedRetryOptions = Required<RetryOptions>;

export const DEFAULT_RETRY: ResolvedRetryOptions = {
  initialDelayMs: 250,
  maxDelayMs: 5000,
  multiplier: 2,
  jitter: 0.5,
  maxAttempts: 10,
  reconnectAttempts: 30,
  maxRetryAfterMs: 30000,
};

export function resolveRetry(opts?: RetryOptions): ResolvedRetryOptions {
  const r: ResolvedRetryOptions = { ...DEFAULT_RETRY };
  if (opts) {
    for (const k of Object.keys(DEFAULT_RETRY) as (keyof ResolvedRetryOptions)[]) {
      const v = opts[k];
      if (v !== undefined) r[k] = v;
    }
  }
  if (!(r.initialDelayMs >= 0) || !(r.maxDelayMs >= 0) || !(r.multiplier >= 1)) {
    throw new RangeError('retry: initialDelayMs and maxDelayMs must be >= 0, multiplier >= 1');
  }
  if (!(r.jitter >= 0 && r.jitter <= 1)) throw new RangeError('retry: jitter must be within 0..1');
  if (!(r.maxAttempts >= 1) || !(r.reconnectAttempts >= 1)) {
    throw new RangeError('retry: maxAttempts and reconnectAttempts must be >= 1');
  }
  return r;
}

/**
 * The delay before retry number `attempt` (1 = the first retry): min(max, initial × multiplier^(attempt−1)),
 * less up to `jitter` of it at random. Never negative, never above `maxDelayMs`.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs;
  const max = opts.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
  const mult = opts.multiplier ?? DEFAULT_RETRY.multiplier;
  const jitter = opts.jitter ?? DEFAULT_RETRY.jitter;
  const n = Math.max(1, Math.floor(attempt));
  // Cap the exponent so huge attempt numbers stay finite.
  const base = Math.min(max, initial * Math.pow(mult, Math.min(n - 1, 64)));
  const r = Math.min(1, Math.max(0, random()));
  return Math.max(0, base * (1 - jitter * r));
}

/**
 * Milliseconds a `Retry-After` header asks for: delay-seconds or an HTTP date. Undefined when the
 * header is absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(parseFloat(v) * 1000);
  // An HTTP date has a weekday and a month name; bare numbers like "-1" are not dates.
  if (!/[A-Za-z]/.test(v)) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}
