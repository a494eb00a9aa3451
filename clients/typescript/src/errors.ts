import type { JobResult, JobStatus } from './types.js';

/** Every error this library throws on its own account derives from this one. */
export class GenWorkerError extends Error {
  override name = 'GenWorkerError';
  /** The error that led to this one, if any. */
  readonly cause?: unknown;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options && 'cause' in options) this.cause = options.cause;
  }
}

/** The `code` values the API documents (`Error.error.code`); other strings are possible from proxies. */
export type ApiErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'too_large'
  | 'unavailable'
  | (string & {});

/** The API answered with a non-2xx status. `code` and `message` come from `{"error": {code, message}}`. */
export class ApiError extends GenWorkerError {
  override name = 'ApiError';
  readonly status: number;
  readonly code: ApiErrorCode;
  /** The raw response body, as text (may be empty). */
  readonly body: string;
  /** Milliseconds from a `Retry-After` header, when the response had one. */
  readonly retryAfterMs?: number;

  constructor(status: number, code: ApiErrorCode, message: string, body = '', retryAfterMs?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/** 400: the request broke a rule (bad id, bad params, bad query). */
export class BadRequestError extends ApiError {
  override name = 'BadRequestError';
}
/** 401: no token, or a token the API does not know. */
export class UnauthorizedError extends ApiError {
  override name = 'UnauthorizedError';
}
/** 403: the token's role may not do this (e.g. a `read` token submitting). */
export class ForbiddenError extends ApiError {
  override name = 'ForbiddenError';
}
/** 404: no such job. */
export class NotFoundError extends ApiError {
  override name = 'NotFoundError';
}
/** 413: the job message is larger than the API takes. */
export class PayloadTooLargeError extends ApiError {
  override name = 'PayloadTooLargeError';
}
/** 502, 503, 504 (and 429): the API, or a proxy before it, cannot answer now. Retried by the client. */
export class UnavailableError extends ApiError {
  override name = 'UnavailableError';
}

/** The API could not be reached, the connection dropped, or it did not answer in time. Retried by the client. */
export class ConnectionError extends GenWorkerError {
  override name = 'ConnectionError';
  /** True when the request was ended by the client's own per-request timeout. */
  readonly timedOut: boolean;

  constructor(message: string, options?: { cause?: unknown; timedOut?: boolean }) {
    super(message, options);
    this.timedOut = options?.timedOut ?? false;
  }
}

/** The API's answer could not be understood (not JSON, a malformed event). */
export class ProtocolError extends GenWorkerError {
  override name = 'ProtocolError';
}

/** A job ended in a state other than `completed`. */
export abstract class JobEndedError extends GenWorkerError {
  /** The job as it ended. */
  readonly job: JobStatus;

  constructor(message: string, job: JobStatus) {
    super(message);
    this.job = job;
  }

  /** The job's id. */
  get id(): string {
    return this.job.id;
  }

  /** The terminal result event (docs/protocol.md), when the API has it. */
  get result(): JobResult | null {
    return this.job.result ?? null;
  }

  /** `result.reason`: `exit_code`, `timeout`, `cancelled_while_running`, … */
  get reason(): string | undefined {
    return this.job.result?.reason;
  }
}

/** The job ended `failed`. `reason` says why (`exit_code`, `timeout`, `invalid_job`, …). */
export class JobFailedError extends JobEndedError {
  override name = 'JobFailedError';

  constructor(job: JobStatus) {
    const r = job.result;
    const why = [r?.reason, r?.message].filter((s) => s !== undefined && s !== '').join(': ');
    super(`job ${job.id} failed${why ? ` (${why})` : ''}`, job);
  }
}

/** The job ended `cancelled` (before it started, or while it ran). */
export class JobCancelledError extends JobEndedError {
  override name = 'JobCancelledError';

  constructor(job: JobStatus) {
    const why = job.result?.reason;
    super(`job ${job.id} was cancelled${why ? ` (${why})` : ''}`, job);
  }
}

/** `wait()` gave up after its `timeoutMs`; the job was left as it was (still queued or running). */
export class WaitTimeoutError extends GenWorkerError {
  override name = 'WaitTimeoutError';
  readonly id: string;
  readonly timeoutMs: number;
  /** The job as last seen, if it was seen at all. */
  readonly job?: JobStatus;

  constructor(id: string, timeoutMs: number, job?: JobStatus, cause?: unknown) {
    super(
      `job ${id} did not end within ${timeoutMs} ms` + (job ? ` (last seen ${job.state})` : ''),
      cause === undefined ? undefined : { cause },
    );
    this.id = id;
    this.timeoutMs = timeoutMs;
    if (job) this.job = job;
  }
}

const DEFAULT_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  413: 'too_large',
  429: 'unavailable',
  502: 'unavailable',
  503: 'unavailable',
  504: 'unavailable',
};

/** Statuses the client retries: the request may be sent again unchanged. */
export const RETRYABLE_STATUSES: readonly number[] = [429, 502, 503, 504];

/**
 * Builds the error for a non-2xx response from its status and body text. The body is the API's
 * `{"error": {"code", "message"}}`; anything else (a proxy's HTML page, an empty body) still gives
 * an error with a code from the status.
 */
export function errorFromResponse(status: number, bodyText: string, retryAfterMs?: number): ApiError {
  let code: string | undefined;
  let message: string | undefined;
  try {
    const parsed: unknown = JSON.parse(bodyText);
    if (isObject(parsed) && isObject(parsed.error)) {
      if (typeof parsed.error.code === 'string') code = parsed.error.code;
      if (typeof parsed.error.message === 'string') message = parsed.error.message;
    }
  } catch {
    // not JSON: fall through to the defaults
  }
  code ??= DEFAULT_CODES[status] ?? (status >= 500 ? 'server_error' : 'http_error');
  if (message === undefined) {
    const text = bodyText.trim().slice(0, 200);
    message = `HTTP ${status}` + (text ? `: ${text}` : '');
  }
  const Ctor = errorClassFor(status);
  return new Ctor(status, code, message, bodyText, retryAfterMs);
}

function errorClassFor(status: number): typeof ApiError {
  switch (status) {
    case 400:
      return BadRequestError;
    case 401:
      return UnauthorizedError;
    case 403:
      return ForbiddenError;
    case 404:
      return NotFoundError;
    case 413:
      return PayloadTooLargeError;
    default:
      return RETRYABLE_STATUSES.includes(status) ? UnavailableError : ApiError;
  }
}

/** True for errors after which the same request may be sent again: connection errors, 429/502/503/504. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ConnectionError) return true;
  if (err instanceof ApiError) return RETRYABLE_STATUSES.includes(err.status);
  return false;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
