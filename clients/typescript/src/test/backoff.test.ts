import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, parseRetryAfter, resolveRetry, DEFAULT_RETRY } from '../backoff.js';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap (no jitter drawn)', () => {
    const opts = { initialDelayMs: 250, maxDelayMs: 5000, multiplier: 2, jitter: 0.5 };
    const got = [1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffDelay(n, opts, () => 0));
    assert.deepEqual(got, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('takes away at most `jitter` of the delay', () => {
    const opts = { initialDelayMs: 1000, maxDelayMs: 1000, jitter: 0.5 };
    assert.equal(backoffDelay(1, opts, () => 1), 500);
    assert.equal(backoffDelay(1, opts, () => 0.5), 750);
    assert.equal(backoffDelay(1, { ...opts, jitter: 0 }, () => 0.9), 1000);
    assert.equal(backoffDelay(1, { ...opts, jitter: 1 }, () => 1), 0);
  });

  it('stays within [0, max] for any attempt and any random draw', () => {
    for (let n = -3; n < 2000; n += 7) {
      const d = backoffDelay(n, DEFAULT_RETRY);
      assert.ok(d >= 0 && d <= DEFAULT_RETRY.maxDelayMs && Number.isFinite(d), `attempt ${n}: ${d}`);
    }
    assert.ok(backoffDelay(1, {}, () => 5) >= 0, 'a random above 1 is clamped');
    assert.ok(backoffDelay(1e9, { multiplier: 10 }) <= DEFAULT_RETRY.maxDelayMs);
  });

  it('treats attempt 0 and below as the first', () => {
    assert.equal(backoffDelay(0, { initialDelayMs: 100 }, () => 0), 100);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter(' 0.5 '), 500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now), 10000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0, 'a past date is no wait');
  });

  it('gives undefined for nothing or garbage', () => {
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter(''), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter('-1'), undefined);
  });
});

describe('resolveRetry', () => {
  it('fills in the defaults and keeps what is given', () => {
    assert.deepEqual(resolveRetry(), DEFAULT_RETRY);
    const r = resolveRetry({ maxAttempts: 3, initialDelayMs: 10 });
    assert.equal(r.maxAttempts, 3);
    assert.equal(r.initialDelayMs, 10);
    assert.equal(r.maxDelayMs, DEFAULT_RETRY.maxDelayMs);
  });

  it('refuses nonsense', () => {
    assert.throws(() => resolveRetry({ maxAttempts: 0 }), RangeError);
    assert.throws(() => resolveRetry({ jitter: 2 }), RangeError);
    assert.throws(() => resolveRetry({ multiplier: 0.5 }), RangeError);
    assert.throws(() => resolveRetry({ initialDelayMs: -1 }), RangeError);
  });
});
