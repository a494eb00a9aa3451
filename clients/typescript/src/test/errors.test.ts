import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiError,
  BadRequestError,
  ConnectionError,
  ForbiddenError,
  GenWorkerError,
  JobCancelledError,
  JobFailedError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
  UnavailableError,
  WaitTimeoutError,
  errorFromResponse,
  isRetryable,
} from '../errors.js';
import { settle } from '../client.js';
import type { JobStatus } from '../types.js';

const body = (code: string, message: string): string => JSON.stringify({ error: { code, message } });

describe('errorFromResponse', () => {
  const cases: [number, string, Function][] = [
    [400, 'bad_request', BadRequestError],
    [401, 'unauthorized', UnauthorizedError],
    [403, 'forbidden', ForbiddenError],
    [404, 'not_found', NotFoundError],
    [413, 'too_large', PayloadTooLargeError],
    [503, 'unavailable', UnavailableError],
  ];
  for (const [status, code, Ctor] of cases) {
    it(`maps ${status} {code: ${code}} to ${Ctor.name}`, () => {
      const e = errorFromResponse(status, body(code, `words for ${status}`));
      assert.ok(e instanceof Ctor);
      assert.ok(e instanceof ApiError);
      assert.ok(e instanceof GenWorkerError);
      assert.ok(e instanceof Error);
      assert.equal(e.status, status);
      assert.equal(e.code, code);
      assert.equal(e.message, `words for ${status}`);
      assert.equal(e.name, Ctor.name);
    });
  }

  it('keeps a code the status does not imply', () => {
    const e = errorFromResponse(400, body('too_large', 'params too big'));
    assert.ok(e instanceof BadRequestError);
    assert.equal(e.code, 'too_large');
  });

  it('copes with a body that is not the API\'s (a proxy page, nothing, other JSON)', () => {
    const html = errorFromResponse(502, '<html><body>Bad Gateway</body></html>');
    assert.ok(html instanceof UnavailableError);
    assert.equal(html.code, 'unavailable');
    assert.match(html.message, /^HTTP 502: <html>/);
    assert.equal(html.body, '<html><body>Bad Gateway</body></html>');
    const empty = errorFromResponse(500, '');
    assert.ok(empty instanceof ApiError && !(empty instanceof UnavailableError));
    assert.equal(empty.code, 'server_error');
    assert.equal(empty.message, 'HTTP 500');
    const other = errorFromResponse(404, '{"detail":"nope"}');
    assert.ok(other instanceof NotFoundError);
    assert.equal(other.code, 'not_found');
    const partial = errorFromResponse(401, '{"error":{"message":"token unknown"}}');
    assert.equal(partial.code, 'unauthorized');
    assert.equal(partial.message, 'token unknown');
    const teapot = errorFromResponse(418, '');
    assert.equal(teapot.code, 'http_error');
  });

  it('carries Retry-After', () => {
    assert.equal(errorFromResponse(503, body('unavailable', 'x'), 2000).retryAfterMs, 2000);
    assert.equal(errorFromResponse(503, body('unavailable', 'x')).retryAfterMs, undefined);
  });
});

describe('isRetryable', () => {
  it('retries connection errors and 429/502/503/504 only', () => {
    assert.equal(isRetryable(new ConnectionError('refused')), true);
    for (const s of [429, 502, 503, 504]) assert.equal(isRetryable(errorFromResponse(s, '')), true, String(s));
    for (const s of [400, 401, 403, 404, 413, 500]) assert.equal(isRetryable(errorFromResponse(s, '')), false, String(s));
    assert.equal(isRetryable(new TypeError('fetch failed')), false, 'a raw error is first mapped by the transport');
    assert.equal(isRetryable(undefined), false);
  });
});

describe('job end errors', () => {
  const base: JobStatus = { id: 'j1', state: 'running', cancel_requested: false };
  const failed: JobStatus = {
    ...base,
    state: 'failed',
    result: { id: 'j1', event: 'failed', status: 'failed', reason: 'exit_code', message: 'generate.py exited 1', worker: 'w' },
  };
  const cancelled: JobStatus = {
    ...base,
    state: 'cancelled',
    cancel_requested: true,
    result: { id: 'j1', event: 'cancelled', status: 'cancelled', reason: 'cancelled_while_running', worker: 'w' },
  };

  it('settle resolves completed, throws the error matching the end otherwise', () => {
    const done = { ...base, state: 'completed' as const };
    assert.equal(settle(done), done);
    assert.throws(() => settle(failed), (e: unknown) => {
      assert.ok(e instanceof JobFailedError);
      assert.equal(e.job, failed);
      assert.equal(e.id, 'j1');
      assert.equal(e.reason, 'exit_code');
      assert.equal(e.result, failed.result);
      assert.match(e.message, /exit_code: generate.py exited 1/);
      return true;
    });
    assert.throws(() => settle(cancelled), (e: unknown) => {
      assert.ok(e instanceof JobCancelledError);
      assert.equal(e.reason, 'cancelled_while_running');
      return true;
    });
    assert.throws(() => settle(base), /has not ended/);
  });

  it('WaitTimeoutError carries the last job seen', () => {
    const e = new WaitTimeoutError('j1', 1000, base);
    assert.equal(e.job, base);
    assert.equal(e.timeoutMs, 1000);
    assert.match(e.message, /last seen running/);
    assert.equal(new WaitTimeoutError('j1', 5).job, undefined);
  });
});
