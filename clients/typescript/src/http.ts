import { backoffDelay, parseRetryAfter, type ResolvedRetryOptions } from './backoff.js';
import { ApiError, ConnectionError, ProtocolError, errorFromResponse, isRetryable } from './errors.js';
import { abortReason, childController, sleep, throwIfAborted } from './util.js';

/** The part of `fetch` the client uses; pass your own (a proxy agent, a test double) as `ClientOptions.fetch`. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export type QueryValue = string | number | boolean | Date | null | undefined;

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** This request's own time limit, response body included. Default: the client's `timeoutMs`. */
  timeoutMs?: number;
  /** Attempts in all (1 = no retry). Default: `retry.maxAttempts`. */
  attempts?: number;
}

export interface JsonResponse<T> {
  status: number;
  data: T;
}

export interface TransportOptions {
  baseUrl: string;
  token?: string;
  fetch: FetchLike;
  retry: ResolvedRetryOptions;
  timeoutMs: number;
  headers?: Record<string, string>;
  random?: () => number;
}

/** Sends requests to the API: auth, JSON, per-request timeouts, error mapping and retries. */
export class Transport {
  readonly baseUrl: string;
  readonly retry: ResolvedRetryOptions;
  private readonly token: string | undefined;
  private readonly fetchImpl: FetchLike;
  private readonly timeoutMs: number;
  private readonly extraHeaders: Record<string, string>;
  private readonly random: () => number;

  constructor(opts: TransportOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.token = opts.token;
    this.fetchImpl = opts.fetch;
    this.retry = opts.retry;
    this.timeoutMs = opts.timeoutMs;
    this.extraHeaders = { ...(opts.headers ?? {}) };
    this.random = opts.random ?? Math.random;
  }

  url(path: string, query?: Record<string, QueryValue>): string {
    let u = this.baseUrl + path;
    if (query) {
      const parts: string[] = [];
      for (const [k, v] of Object.entries(query)) {
        if (v === undefined || v === null) continue;
        const s = v instanceof Date ? v.toISOString() : String(v);
        parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(s)}`);
      }
      if (parts.length > 0) u += (u.includes('?') ? '&' : '?') + parts.join('&');
    }
    return u;
  }

  headers(extra?: Record<string, string>, json = false): Record<string, string> {
    const h: Record<string, string> = { Accept: 'application/json', ...this.extraHeaders };
    if (json) h['Content-Type'] = 'application/json';
    if (this.token !== undefined && this.token !== '') h['Authorization'] = `Bearer ${this.token}`;
    return { ...h, ...(extra ?? {}) };
  }

  /** The delay before retry `attempt` after `err`: the backoff, or a longer `Retry-After`. */
  retryDelay(attempt: number, err: unknown): number {
    let d = backoffDelay(attempt, this.retry, this.random);
    if (err instanceof ApiError && err.retryAfterMs !== undefined) {
      d = Math.max(d, Math.min(err.retryAfterMs, this.retry.maxRetryAfterMs));
    }
    return d;
  }

  /** One request and its JSON answer, retried on connection errors and 429/502/503/504. */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<JsonResponse<T>> {
    const attempts = Math.max(1, opts.attempts ?? this.retry.maxAttempts);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.jsonOnce<T>(method, path, opts);
      } catch (err) {
        if (!isRetryable(err) || attempt >= attempts) throw err;
        throwIfAborted(opts.signal);
        await sleep(this.retryDelay(attempt, err), opts.signal);
      }
    }
  }

  /** One attempt: throws ConnectionError (retryable), ApiError, ProtocolError, or the signal's reason. */
  async jsonOnce<T>(method: string, path: string, opts: RequestOptions = {}): Promise<JsonResponse<T>> {
    const hasBody = opts.body !== undefined;
    const { response, text } = await this.exchange(this.url(path, opts.query), {
      method,
      headers: this.headers(opts.headers, hasBody),
      body: hasBody ? JSON.stringify(opts.body) : undefined,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? this.timeoutMs,
    });
    if (!response.ok) {
      throw errorFromResponse(response.status, text, parseRetryAfter(response.headers.get('Retry-After')));
    }
    let data: T;
    try {
      data = JSON.parse(text) as T;
    } catch (e) {
      throw new ProtocolError(`${method} ${path}: the answer (HTTP ${response.status}) is not JSON`, { cause: e });
    }
    return { status: response.status, data };
  }

  /** fetch + the whole body as text, under one timeout. */
  private async exchange(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal; timeoutMs: number },
  ): Promise<{ response: Response; text: string }> {
    throwIfAborted(init.signal);
    const { controller, dispose } = childController(init.signal);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new ConnectionError(`no answer within ${init.timeoutMs} ms`, { timedOut: true }));
    }, init.timeoutMs);
    try {
      const reqInit: RequestInit = { method: init.method, headers: init.headers, signal: controller.signal };
      if (init.body !== undefined) reqInit.body = init.body;
      const response = await this.fetchImpl(url, reqInit);
      const text = await response.text();
      return { response, text };
    } catch (err) {
      throw this.connectionFailure(err, init.signal, timedOut, `${init.method} ${url}`);
    } finally {
      clearTimeout(timer);
      dispose();
    }
  }

  /**
   * Opens a streaming GET (server-sent events): returns the response with its body unread and the
   * controller that ends it. Throws like {@link jsonOnce} when the answer is not 2xx.
   */
  async openStream(
    path: string,
    opts: { headers?: Record<string, string>; signal?: AbortSignal; connectTimeoutMs?: number },
  ): Promise<{ response: Response; controller: AbortController; dispose: () => void }> {
    throwIfAborted(opts.signal);
    const url = this.url(path);
    const { controller, dispose } = childController(opts.signal);
    let timedOut = false;
    const limit = opts.connectTimeoutMs ?? this.timeoutMs;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new ConnectionError(`no answer within ${limit} ms`, { timedOut: true }));
    }, limit);
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: 'GET',
        headers: this.headers({ Accept: 'text/event-stream', 'Cache-Control': 'no-cache', ...(opts.headers ?? {}) }),
        signal: controller.signal,
      });
    } catch (err) {
      clearTimeout(timer);
      dispose();
      throw this.connectionFailure(err, opts.signal, timedOut, `GET ${url}`);
    }
    clearTimeout(timer);
    if (!response.ok) {
      let text = '';
      try {
        text = await response.text();
      } catch {
        // the error body is optional
      }
      dispose();
      throw errorFromResponse(response.status, text, parseRetryAfter(response.headers.get('Retry-After')));
    }
    return { response, controller, dispose };
  }

  /** Maps what fetch threw: the caller's abort stays itself, everything else is a ConnectionError. */
  connectionFailure(err: unknown, signal: AbortSignal | undefined, timedOut: boolean, what: string): unknown {
    if (signal?.aborted) return abortReason(signal);
    if (err instanceof ConnectionError) return err;
    if (timedOut) return new ConnectionError(`${what}: timed out`, { cause: err, timedOut: true });
    const detail = describe(err);
    return new ConnectionError(`${what}: ${detail}`, { cause: err });
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${err.message} (${cause.message})`;
    if (cause && typeof cause === 'object' && 'code' in cause) return `${err.message} (${String((cause as { code: unknown }).code)})`;
    return err.message;
  }
  return String(err);
}
