import { resolveRetry, type RetryOptions } from './backoff.js';
import {
  ConnectionError,
  JobCancelledError,
  JobFailedError,
  NotFoundError,
  ProtocolError,
  WaitTimeoutError,
  isRetryable,
} from './errors.js';
import { Transport, type FetchLike } from './http.js';
import { SSEDecoder, type SSEEvent } from './sse.js';
import type { OutputTarget, Task, TaskParams, Webhook } from './tasks.js';
import {
  isTerminal,
  type Job,
  type JobPage,
  type JobState,
  type JobStatus,
  type QueueInfo,
  type WorkerInfo,
} from './types.js';
import { abortReason, randomId, sleep, throwIfAborted } from './util.js';

export interface ClientOptions {
  /** The API's base URL, e.g. `https://genworker.example.com` (the `/v1/...` paths are added). */
  url: string;
  /** A bearer token from the API's `api.tokens`. */
  token?: string;
  /** A fetch to use instead of the global one. */
  fetch?: FetchLike;
  /** Retry and reconnection timing. */
  retry?: RetryOptions;
  /** Time limit of one ordinary request, body included. Default 30000 ms. Long polls add their own length. */
  timeoutMs?: number;
  /** Length of each long poll of `wait()`, in seconds (the API takes at most 60). Default 30. */
  longPollS?: number;
  /**
   * An event stream with nothing on it (no event, no keep-alive comment) for this long is taken as
   * dead and reconnected. The API sends a comment every 15 s. Default 45000 ms.
   */
  idleTimeoutMs?: number;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
}

export interface SubmitOptions {
  /** The job's id, `[A-Za-z0-9_-]{1,128}`: the idempotency key. Default: a random UUID. */
  id?: string;
  /** The job's time limit in seconds (worker default 3600, at most its `jobs.max_timeout_s`). */
  timeoutS?: number;
  /** v1.1: a presigned PUT URL the worker uploads the video to. */
  output?: OutputTarget;
  /** v1.1: where the worker POSTs the job's events. */
  webhook?: Webhook;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Give up after this long with a {@link WaitTimeoutError}; the job is left as it is. Default: no limit. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface EventsOptions {
  signal?: AbortSignal;
  /** Resume after this event id (a `Last-Event-ID` from an earlier stream). */
  lastEventId?: string;
}

export interface CancelOptions {
  /** How long the API waits for the job to end before answering, 0 to 60 s. Default: the API's (10 s). */
  waitS?: number;
  signal?: AbortSignal;
}

export interface RequestSignal {
  signal?: AbortSignal;
}

export interface JobFilters {
  state?: JobState;
  task?: Task | (string & {});
  submitter?: string;
  /** Submitted at or after (a Date or an RFC 3339 string). */
  since?: Date | string;
  /** Submitted before (a Date or an RFC 3339 string). */
  until?: Date | string;
  /** Page size, 1 to 1000 (API default 100). */
  limit?: number;
  /** Start from this `next_cursor`. */
  cursor?: string;
  signal?: AbortSignal;
}

const MAX_LONG_POLL_S = 60;
/** What a long poll may take beyond its `timeout_s` before the client gives up on the connection. */
const LONG_POLL_GRACE_MS = 15000;

/**
 * A client of the genworker HTTP API.
 *
 * ```ts
 * const client = new Client({ url: 'https://genworker.example.com', token });
 * const job = await client.submit('t2v-A14B', { prompt: 'a red fox', size: '1280*720' });
 * const done = await client.job(job.id).wait();
 * ```
 */
export class Client {
  /** @internal */
  readonly transport: Transport;
  /** @internal */
  readonly longPollS: number;
  /** @internal */
  readonly idleTimeoutMs: number;

  constructor(options: ClientOptions) {
    if (!options || typeof options.url !== 'string' || options.url === '') {
      throw new TypeError('Client: `url` is required');
    }
    const f = options.fetch ?? (globalThis.fetch ? globalThis.fetch.bind(globalThis) : undefined);
    if (!f) throw new TypeError('Client: no global fetch here; pass `fetch` in the options');
    const timeoutMs = options.timeoutMs ?? 30000;
    const longPollS = options.longPollS ?? 30;
    if (!(timeoutMs > 0)) throw new RangeError('Client: timeoutMs must be > 0');
    if (!(longPollS > 0 && longPollS <= MAX_LONG_POLL_S)) throw new RangeError('Client: longPollS must be within (0, 60]');
    this.longPollS = longPollS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 45000;
    const transportOptions: ConstructorParameters<typeof Transport>[0] = {
      baseUrl: options.url,
      fetch: f as FetchLike,
      retry: resolveRetry(options.retry),
      timeoutMs,
    };
    if (options.token !== undefined) transportOptions.token = options.token;
    if (options.headers !== undefined) transportOptions.headers = options.headers;
    this.transport = new Transport(transportOptions);
  }

  /**
   * Submits a job. The id is the idempotency key: the API returns the existing job for an id it
   * knows and never runs it twice, so connection errors and 502/503/504 are retried with the same
   * id. Resolves with the job as the API recorded it (queued, or further along for a known id).
   */
  async submit<T extends Task>(task: T, params: TaskParams[T], options: SubmitOptions = {}): Promise<Job> {
    const id = options.id ?? randomId();
    const body: Record<string, unknown> = { id, task, params };
    if (options.timeoutS !== undefined) body.timeout_s = options.timeoutS;
    if (options.output !== undefined) body.output = options.output;
    if (options.webhook !== undefined) body.webhook = options.webhook;
    const req: { body: unknown; signal?: AbortSignal } = { body };
    if (options.signal) req.signal = options.signal;
    const { data } = await this.transport.json<Job>('POST', '/v1/jobs', req);
    return data;
  }

  /** A handle on job `id`, from anywhere: nothing is sent until you call one of its methods. */
  job(id: string): JobHandle {
    if (typeof id !== 'string' || id === '') throw new TypeError('job: id must be a non-empty string');
    return new JobHandle(this, id);
  }

  /** One page of jobs, newest first. */
  async listJobs(filters: JobFilters = {}): Promise<JobPage> {
    const { signal, ...query } = filters;
    const req: { query: Record<string, string | number | Date | undefined>; signal?: AbortSignal } = { query };
    if (signal) req.signal = signal;
    const { data } = await this.transport.json<JobPage>('GET', '/v1/jobs', req);
    return data;
  }

  /**
   * The jobs that match, newest first, page after page by cursor:
   * `for await (const job of client.jobs({ state: 'running' }))`, or `.pages()` for whole pages.
   */
  jobs(filters: JobFilters = {}): JobList {
    return new JobList(this, filters);
  }

  /** Workers heard from in the API's window. */
  async workers(options: RequestSignal = {}): Promise<WorkerInfo[]> {
    const { data } = await this.transport.json<{ workers: WorkerInfo[] }>('GET', '/v1/workers', signalOnly(options));
    return data.workers;
  }

  /** The queues and their depths. */
  async queues(options: RequestSignal = {}): Promise<QueueInfo[]> {
    const { data } = await this.transport.json<{ queues: QueueInfo[] }>('GET', '/v1/queues', signalOnly(options));
    return data.queues;
  }
}

/** The jobs matching some filters, fetched a page at a time as you iterate. */
export class JobList implements AsyncIterable<JobStatus> {
  constructor(
    private readonly client: Client,
    private readonly filters: JobFilters,
  ) {}

  /** The pages, following `next_cursor` until there is none. */
  async *pages(): AsyncGenerator<JobPage, void, undefined> {
    let cursor = this.filters.cursor;
    const seen = new Set<string>();
    for (;;) {
      const f: JobFilters = { ...this.filters };
      if (cursor !== undefined) f.cursor = cursor;
      else delete f.cursor;
      const page = await this.client.listJobs(f);
      yield page;
      const next = page.next_cursor;
      if (next === undefined || next === null || next === '' || page.jobs.length === 0) return;
      if (seen.has(next)) throw new ProtocolError(`jobs: the API returned cursor ${next} twice`);
      seen.add(next);
      cursor = next;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<JobStatus, void, undefined> {
    for await (const page of this.pages()) {
      for (const job of page.jobs) yield job;
    }
  }

  /** Collects up to `max` jobs (default: all of them). */
  async toArray(max = Infinity): Promise<JobStatus[]> {
    const out: JobStatus[] = [];
    if (max <= 0) return out;
    for await (const job of this) {
      out.push(job);
      if (out.length >= max) break;
    }
    return out;
  }
}

/** One job, by id. Get one with `client.job(id)`; it holds no connection of its own. */
export class JobHandle {
  constructor(
    private readonly client: Client,
    /** The job's id. */
    readonly id: string,
  ) {}

  private get path(): string {
    return `/v1/jobs/${encodeURIComponent(this.id)}`;
  }

  /** The job now, with its timeline. Retries connection errors and 502/503/504. */
  async status(options: RequestSignal = {}): Promise<JobStatus> {
    const { data } = await this.client.transport.json<JobStatus>('GET', this.path, signalOnly(options));
    return data;
  }

  /**
   * Waits for the job to end, by long polls, and follows it through connection errors and API
   * restarts. Resolves with the job when it `completed`; rejects with {@link JobFailedError} or
   * {@link JobCancelledError} (both carry the job) when it ended otherwise, and with
   * {@link WaitTimeoutError} when `timeoutMs` passes first (the job is left running).
   */
  async wait(options: WaitOptions = {}): Promise<JobStatus> {
    const job = await this.waitEnded(options);
    return settle(job);
  }

  /** Like {@link wait}, but resolves with the ended job whatever its state. */
  async waitEnded(options: WaitOptions = {}): Promise<JobStatus> {
    const { signal } = options;
    const transport = this.client.transport;
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) throw new RangeError('wait: timeoutMs must be >= 0');
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    let last: JobStatus | undefined;
    let failures = 0;
    let lastError: unknown;
    for (;;) {
      throwIfAborted(signal);
      const remaining = deadline - Date.now();
      if (remaining <= 0 && (last !== undefined || failures > 0)) {
        throw new WaitTimeoutError(this.id, timeoutMs ?? 0, last, lastError);
      }
      const pollS = Math.max(0, Math.min(this.client.longPollS, remaining / 1000));
      const timeoutS = Math.round(pollS * 1000) / 1000;
      try {
        const req: { query: Record<string, number>; timeoutMs: number; signal?: AbortSignal } = {
          query: { timeout_s: timeoutS },
          timeoutMs: timeoutS * 1000 + LONG_POLL_GRACE_MS,
        };
        if (signal) req.signal = signal;
        const { data } = await transport.jsonOnce<JobStatus>('GET', `${this.path}/wait`, req);
        last = data;
        failures = 0;
        lastError = undefined;
        if (isTerminal(data.state)) return data;
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        if (!this.retryable(err, last !== undefined)) throw err;
        failures++;
        lastError = err;
        if (failures >= transport.retry.reconnectAttempts) throw err;
        const left = deadline - Date.now();
        if (left <= 0) throw new WaitTimeoutError(this.id, timeoutMs ?? 0, last, err);
        await sleep(Math.min(transport.retryDelay(failures, err), left), signal);
      }
    }
  }

  /**
   * The job as it changes, from the API's event stream, ending after the job ends. A dropped
   * connection or an API restart is followed by a reconnection with `Last-Event-ID` (capped
   * backoff, at most `retry.reconnectAttempts` failures in a row), so no change is missed and none
   * is seen twice. Leaving the loop early closes the stream.
   */
  async *events(options: EventsOptions = {}): AsyncGenerator<JobStatus, void, undefined> {
    const { signal } = options;
    const transport = this.client.transport;
    let lastId = options.lastEventId ?? '';
    let seenJob = options.lastEventId !== undefined;
    let lastState: JobState | undefined;
    let failures = 0;
    let serverRetryMs: number | undefined;
    for (;;) {
      throwIfAborted(signal);
      let err: unknown;
      let stream: Awaited<ReturnType<Transport['openStream']>> | undefined;
      try {
        const headers: Record<string, string> = {};
        if (lastId !== '') headers['Last-Event-ID'] = lastId;
        const open: { headers: Record<string, string>; signal?: AbortSignal } = { headers };
        if (signal) open.signal = signal;
        stream = await transport.openStream(`${this.path}/events`, open);
      } catch (e) {
        err = e;
      }
      if (stream) {
        const { response, controller, dispose } = stream;
        const decoder = new SSEDecoder({
          onRetry: (ms) => {
            serverRetryMs = ms;
          },
        });
        let idle: ReturnType<typeof setTimeout> | undefined;
        const armIdle = (): void => {
          if (idle !== undefined) clearTimeout(idle);
          idle = setTimeout(() => {
            controller.abort(new ConnectionError(`event stream silent for ${this.client.idleTimeoutMs} ms`));
          }, this.client.idleTimeoutMs);
        };
        const body = response.body;
        const reader = body ? body.getReader() : undefined;
        try {
          if (!reader) throw new ProtocolError('the event stream has no body');
          armIdle();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            armIdle();
            if (!value || value.length === 0) continue;
            for (const ev of decoder.feed(value)) {
              if (ev.hasId) lastId = ev.id;
              if (ev.event === 'job') {
                const job = parseJob(ev, this.id);
                seenJob = true;
                failures = 0;
                lastState = job.state;
                yield job;
              } else if (ev.event === 'end') {
                const job = ev.data.trim() === '' ? undefined : tryParseJob(ev.data);
                if (job && job.state !== lastState && isTerminal(job.state)) yield job;
                return;
              }
              // other event types are ignored
            }
          }
          decoder.end();
          err = new ConnectionError('the event stream closed before its end event');
        } catch (e) {
          err = e;
        } finally {
          if (idle !== undefined) clearTimeout(idle);
          // Also reached when the consumer leaves the loop early: close the stream.
          controller.abort();
          dispose();
          if (reader) {
            reader.cancel().catch(() => {});
          }
        }
        // A connection that broke after the job was seen is a retryable drop, not a protocol fault.
        if (!(err instanceof ProtocolError) && !(err instanceof ConnectionError) && !isRetryable(err)) {
          if (signal?.aborted) throw abortReason(signal);
          err = new ConnectionError(`the event stream broke: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
          });
        }
      }
      if (signal?.aborted) throw abortReason(signal);
      if (!this.retryable(err, seenJob)) throw err;
      failures++;
      if (failures >= transport.retry.reconnectAttempts) throw err;
      let delay = transport.retryDelay(failures, err);
      if (serverRetryMs !== undefined && failures === 1) delay = Math.max(delay, serverRetryMs);
      await sleep(delay, signal);
    }
  }

  /**
   * Asks for the job to be cancelled and returns it as the cancel left it: `cancelled` once the
   * worker stopped the whole process tree, its own end if it ended first, or (after `waitS`) not
   * ended yet with `cancel_requested` true. Retried like a read (a cancel is idempotent).
   */
  async cancel(options: CancelOptions = {}): Promise<JobStatus> {
    const req: { query: Record<string, number | undefined>; timeoutMs?: number; signal?: AbortSignal } = {
      query: { wait_s: options.waitS },
    };
    if (options.waitS !== undefined) req.timeoutMs = options.waitS * 1000 + LONG_POLL_GRACE_MS;
    else req.timeoutMs = 10000 + LONG_POLL_GRACE_MS;
    if (options.signal) req.signal = options.signal;
    const { data } = await this.client.transport.json<JobStatus>('POST', `${this.path}/cancel`, req);
    return data;
  }

  /**
   * Errors a wait or an event stream rides out: connection errors, 429/502/503/504, and a 404 for a
   * job already seen (an API that restarted and has not yet folded the ledger back in).
   */
  private retryable(err: unknown, seen: boolean): boolean {
    if (isRetryable(err)) return true;
    return seen && err instanceof NotFoundError;
  }
}

/** Resolves a completed job, throws the matching error for a failed or cancelled one. */
export function settle(job: JobStatus): JobStatus {
  switch (job.state) {
    case 'completed':
      return job;
    case 'failed':
      throw new JobFailedError(job);
    case 'cancelled':
      throw new JobCancelledError(job);
    default:
      throw new ProtocolError(`job ${job.id} has not ended (state ${job.state})`);
  }
}

function parseJob(ev: SSEEvent, id: string): JobStatus {
  const job = tryParseJob(ev.data);
  if (!job) throw new ProtocolError(`job ${id}: an event's data is not a job: ${ev.data.slice(0, 200)}`);
  return job;
}

function tryParseJob(data: string): JobStatus | undefined {
  try {
    const v: unknown = JSON.parse(data);
    if (typeof v === 'object' && v !== null && typeof (v as JobStatus).id === 'string' && typeof (v as JobStatus).state === 'string') {
      return v as JobStatus;
    }
  } catch {
    // not JSON
  }
  return undefined;
}

function signalOnly(options: RequestSignal): { signal?: AbortSignal } {
  return options.signal ? { signal: options.signal } : {};
}
