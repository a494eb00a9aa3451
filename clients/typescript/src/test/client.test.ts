// The client's logic against a scripted fetch (no server): retries, long-poll loop, the event
// stream's reconnection, paging. The real API is exercised by integration.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BadRequestError,
  Client,
  ConnectionError,
  JobCancelledError,
  JobFailedError,
  NotFoundError,
  UnauthorizedError,
  WaitTimeoutError,
  JOB_ID_PATTERN,
  type JobStatus,
} from '../index.js';

interface Call {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: unknown;
  signal: AbortSignal | undefined;
}

type Step = (call: Call) => Response | Promise<Response>;

/** A fetch that answers each call with the next step, and records the calls. */
function scripted(steps: Step[]): { fetch: (input: string, init: RequestInit) => Promise<Response>; calls: Call[] } {
  const calls: Call[] = [];
  const f = async (input: string, init: RequestInit): Promise<Response> => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((init.headers ?? {}) as Record<string, string>)) headers[k.toLowerCase()] = v;
    const call: Call = {
      url: new URL(input),
      method: init.method ?? 'GET',
      headers,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
      signal: init.signal ?? undefined,
    };
    calls.push(call);
    const step = steps.shift();
    if (!step) throw new Error(`unexpected call ${call.method} ${input}`);
    return step(call);
  };
  return { fetch: f, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
const apiError = (status: number, code: string, message = code): Response => json(status, { error: { code, message } });
const refused = (): never => {
  // What undici throws: TypeError('fetch failed') with the socket error as its cause.
  throw Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
};
const queryOf = (u: URL): Record<string, string> => {
  const o: Record<string, string> = {};
  u.searchParams.forEach((v, k) => (o[k] = v));
  return o;
};
const job = (state: JobStatus['state'], extra: Partial<JobStatus> = {}): JobStatus => ({
  id: 'job-1',
  state,
  cancel_requested: false,
  ...extra,
});

/** A streamed response whose body gives `parts` one by one, then ends (or stays open). */
function sse(parts: string[], opts: { keepOpen?: boolean; onCancel?: () => void; signal?: AbortSignal } = {}): Response {
  const enc = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) {
        controller.enqueue(enc.encode(parts[i++] as string));
        return;
      }
      if (!opts.keepOpen) {
        controller.close();
        return;
      }
      return new Promise<void>((_, reject) => {
        opts.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      });
    },
    cancel() {
      opts.onCancel?.();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

const fast = { initialDelayMs: 1, maxDelayMs: 5 };
const client = (f: ReturnType<typeof scripted>, extra: Partial<ConstructorParameters<typeof Client>[0]> = {}): Client =>
  new Client({ url: 'http://api.test/base/', token: 'tok', fetch: f.fetch, retry: fast, ...extra });

describe('Client.submit', () => {
  it('posts the job message with a generated id and the token', async () => {
    const f = scripted([(c) => json(202, job('queued', { id: (c.body as { id: string }).id }))]);
    const got = await client(f).submit('t2v-A14B', { prompt: 'a fox', size: '832*480' }, { timeoutS: 600 });
    const call = f.calls[0] as Call;
    assert.equal(call.method, 'POST');
    assert.equal(call.url.pathname, '/base/v1/jobs');
    assert.equal(call.headers['authorization'], 'Bearer tok');
    assert.equal(call.headers['content-type'], 'application/json');
    const sent = call.body as Record<string, unknown>;
    assert.match(String(sent.id), JOB_ID_PATTERN);
    assert.deepEqual(sent, { id: sent.id, task: 't2v-A14B', params: { prompt: 'a fox', size: '832*480' }, timeout_s: 600 });
    assert.equal(got.id, sent.id);
    assert.equal(got.state, 'queued');
  });

  it('retries connection errors and 502/503/504 with the same id', async () => {
    const f = scripted([
      refused,
      () => apiError(503, 'unavailable'),
      () => new Response('<html>bad gateway</html>', { status: 502 }),
      () => new Response('', { status: 504 }),
      (c) => json(200, job('running', { id: (c.body as { id: string }).id })),
    ]);
    const got = await client(f).submit('t2v-A14B', { prompt: 'x' }, { id: 'fixed-id' });
    assert.equal(f.calls.length, 5);
    for (const c of f.calls) assert.equal((c.body as { id: string }).id, 'fixed-id');
    assert.equal(got.state, 'running');
  });

  it('gives up after maxAttempts with the last error', async () => {
    const f = scripted([refused, refused, refused]);
    await assert.rejects(client(f, { retry: { ...fast, maxAttempts: 3 } }).submit('t2v-A14B', { prompt: 'x' }), ConnectionError);
    assert.equal(f.calls.length, 3);
  });

  it('does not retry 400 or 401', async () => {
    const f = scripted([() => apiError(400, 'bad_request', 'params.size: not one of …')]);
    await assert.rejects(client(f).submit('t2v-A14B', { prompt: 'x' }), (e: unknown) => {
      assert.ok(e instanceof BadRequestError);
      assert.equal(e.message, 'params.size: not one of …');
      return true;
    });
    const g = scripted([() => apiError(401, 'unauthorized')]);
    await assert.rejects(client(g).submit('t2v-A14B', { prompt: 'x' }), UnauthorizedError);
    assert.equal(f.calls.length + g.calls.length, 2);
  });

  it('times a request out and retries it', async () => {
    const f = scripted([
      (c) =>
        new Promise<Response>((_, reject) => {
          c.signal?.addEventListener('abort', () => reject(c.signal?.reason ?? new Error('aborted')));
        }),
      () => json(202, job('queued')),
    ]);
    const got = await client(f, { timeoutMs: 30 }).submit('t2v-A14B', { prompt: 'x' });
    assert.equal(got.state, 'queued');
    assert.equal(f.calls.length, 2);
  });

  it('stops at once when the caller aborts', async () => {
    const ac = new AbortController();
    const f = scripted([
      () => {
        ac.abort(new Error('mine'));
        return refused();
      },
    ]);
    await assert.rejects(client(f).submit('t2v-A14B', { prompt: 'x' }, { signal: ac.signal }), /mine/);
    assert.equal(f.calls.length, 1);
  });
});

describe('JobHandle.wait', () => {
  it('long-polls until the job ends and resolves when it completed', async () => {
    const f = scripted([() => json(200, job('queued')), () => json(200, job('running')), () => json(200, job('completed'))]);
    const got = await client(f, { longPollS: 20 }).job('job-1').wait();
    assert.equal(got.state, 'completed');
    assert.equal(f.calls.length, 3);
    for (const c of f.calls) {
      assert.equal(c.url.pathname, '/base/v1/jobs/job-1/wait');
      assert.equal(c.url.searchParams.get('timeout_s'), '20');
    }
  });

  it('rejects with JobFailedError / JobCancelledError carrying the job', async () => {
    const failed = job('failed', { result: { id: 'job-1', event: 'failed', reason: 'timeout', worker: 'w' } });
    const f = scripted([() => json(200, failed)]);
    await assert.rejects(client(f).job('job-1').wait(), (e: unknown) => e instanceof JobFailedError && e.job.state === 'failed' && e.reason === 'timeout');
    const g = scripted([() => json(200, job('cancelled'))]);
    await assert.rejects(client(g).job('job-1').wait(), JobCancelledError);
    const h = scripted([() => json(200, job('cancelled'))]);
    assert.equal((await client(h).job('job-1').waitEnded()).state, 'cancelled');
  });

  it('rejects with WaitTimeoutError when the time is up, with the job as last seen', async () => {
    const slow = (): Promise<Response> => new Promise((r) => setTimeout(() => r(json(200, job('running'))), 20));
    const f = scripted([slow, slow, slow, slow, slow, slow, slow, slow, slow, slow]);
    const t0 = Date.now();
    await assert.rejects(client(f).job('job-1').wait({ timeoutMs: 50 }), (e: unknown) => {
      assert.ok(e instanceof WaitTimeoutError);
      assert.equal(e.job?.state, 'running');
      return true;
    });
    assert.ok(Date.now() - t0 < 1000);
    const first = Number(f.calls[0]?.url.searchParams.get('timeout_s'));
    assert.ok(first > 0 && first <= 0.05, `timeout_s follows the time left: ${first}`);
  });

  it('asks once with timeout_s=0 when timeoutMs is 0', async () => {
    const f = scripted([() => json(200, job('running'))]);
    await assert.rejects(client(f).job('job-1').wait({ timeoutMs: 0 }), WaitTimeoutError);
    assert.equal(f.calls[0]?.url.searchParams.get('timeout_s'), '0');
    const g = scripted([() => json(200, job('completed'))]);
    assert.equal((await client(g).job('job-1').wait({ timeoutMs: 0 })).state, 'completed');
  });

  it('rides out connection errors, 503s and a 404 after the job was seen (an API restart)', async () => {
    const f = scripted([
      () => json(200, job('running')),
      refused,
      refused,
      () => apiError(503, 'unavailable'),
      () => apiError(404, 'not_found'),
      () => json(200, job('completed')),
    ]);
    assert.equal((await client(f).job('job-1').wait()).state, 'completed');
    assert.equal(f.calls.length, 6);
  });

  it('does not wait on a job the API never knew', async () => {
    const f = scripted([() => apiError(404, 'not_found', 'no job nope')]);
    await assert.rejects(client(f).job('nope').wait(), NotFoundError);
  });

  it('stops after reconnectAttempts failures in a row', async () => {
    const f = scripted([refused, refused, refused]);
    await assert.rejects(client(f, { retry: { ...fast, reconnectAttempts: 3 } }).job('job-1').wait(), ConnectionError);
    assert.equal(f.calls.length, 3);
  });

  it('rejects with the abort reason when the signal aborts', async () => {
    const ac = new AbortController();
    const f = scripted([
      (c) =>
        new Promise<Response>((_, reject) => {
          c.signal?.addEventListener('abort', () => reject(new Error('fetch aborted')));
          setTimeout(() => ac.abort(new Error('user gave up')), 10);
        }),
    ]);
    await assert.rejects(client(f).job('job-1').wait({ signal: ac.signal }), /user gave up/);
  });
});

describe('JobHandle.events', () => {
  const data = (j: JobStatus): string => JSON.stringify(j);

  it('yields each job event and ends after `end`', async () => {
    const f = scripted([
      () =>
        sse([
          ': hello\n\n',
          `event: job\nid: 1\ndata: ${data(job('queued'))}\n\n`,
          `event: job\nid: 2\ndata: ${data(job('running', { progress: { percent: 50 } }))}\n\n`,
          `event: job\nid: 3\ndata: ${data(job('completed'))}\n\nevent: end\nid: 3\ndata: ${data(job('completed'))}\n\n`,
        ]),
    ]);
    const states: string[] = [];
    for await (const j of client(f).job('job-1').events()) states.push(j.state);
    assert.deepEqual(states, ['queued', 'running', 'completed']);
    assert.equal(f.calls[0]?.url.pathname, '/base/v1/jobs/job-1/events');
    assert.equal(f.calls[0]?.headers['accept'], 'text/event-stream');
    assert.equal(f.calls[0]?.headers['last-event-id'], undefined);
  });

  it('reconnects with Last-Event-ID when the stream drops or the API is down', async () => {
    const f = scripted([
      () => sse([`event: job\nid: 7\ndata: ${data(job('queued'))}\n\n`, 'event: job\nid: 8\ndata: {"trunc']),
      refused,
      () => apiError(503, 'unavailable'),
      () => sse([`event: job\nid: 9\ndata: ${data(job('running'))}\n\n`]),
      () => sse([`event: job\nid: 10\ndata: ${data(job('failed'))}\n\nevent: end\ndata:\n\n`]),
    ]);
    const states: string[] = [];
    for await (const j of client(f).job('job-1').events()) states.push(j.state);
    assert.deepEqual(states, ['queued', 'running', 'failed']);
    assert.deepEqual(
      f.calls.map((c) => c.headers['last-event-id']),
      [undefined, '7', '7', '7', '9'],
    );
  });

  it('yields the job an `end` carries when no job event said it ended', async () => {
    const f = scripted([() => sse([`event: job\nid: 1\ndata: ${data(job('running'))}\n\n`, `event: end\nid: 2\ndata: ${data(job('completed'))}\n\n`])]);
    const states: string[] = [];
    for await (const j of client(f).job('job-1').events()) states.push(j.state);
    assert.deepEqual(states, ['running', 'completed']);
  });

  it('reconnects when the stream goes silent', async () => {
    const f = scripted([
      (c) => sse([`event: job\nid: 1\ndata: ${data(job('running'))}\n\n`], { keepOpen: true, signal: c.signal as AbortSignal }),
      () => sse([`event: job\nid: 2\ndata: ${data(job('completed'))}\n\nevent: end\n\n`]),
    ]);
    const states: string[] = [];
    for await (const j of client(f, { idleTimeoutMs: 40 }).job('job-1').events()) states.push(j.state);
    assert.deepEqual(states, ['running', 'completed']);
    assert.equal(f.calls[1]?.headers['last-event-id'], '1');
  });

  it('closes the stream when the loop is left early', async () => {
    let cancelled = false;
    let signal: AbortSignal | undefined;
    const f = scripted([
      (c) => {
        signal = c.signal;
        return sse([`event: job\nid: 1\ndata: ${data(job('running'))}\n\n`], {
          keepOpen: true,
          signal: c.signal as AbortSignal,
          onCancel: () => (cancelled = true),
        });
      },
    ]);
    for await (const j of client(f).job('job-1').events()) {
      assert.equal(j.state, 'running');
      break;
    }
    assert.equal(signal?.aborted, true);
    assert.equal(f.calls.length, 1);
    void cancelled;
  });

  it('throws at once for a 401 and for a job the API does not know', async () => {
    const f = scripted([() => apiError(401, 'unauthorized')]);
    await assert.rejects(async () => {
      for await (const _ of client(f).job('job-1').events()) void _;
    }, UnauthorizedError);
    const g = scripted([() => apiError(404, 'not_found')]);
    await assert.rejects(async () => {
      for await (const _ of client(g).job('job-1').events()) void _;
    }, NotFoundError);
  });
});

describe('JobHandle.cancel and status', () => {
  it('posts the cancel with wait_s and returns the job', async () => {
    const f = scripted([refused, () => json(200, job('cancelled', { cancel_requested: true }))]);
    const got = await client(f).job('job-1').cancel({ waitS: 5 });
    assert.equal(got.state, 'cancelled');
    assert.equal(f.calls[1]?.method, 'POST');
    assert.equal(f.calls[1]?.url.pathname, '/base/v1/jobs/job-1/cancel');
    assert.equal(f.calls[1]?.url.searchParams.get('wait_s'), '5');
  });

  it('gets the status, escaping the id', async () => {
    const f = scripted([() => json(200, job('running', { timeline: [{ event: 'submitted' }] }))]);
    const got = await client(f).job('a/b').status();
    assert.equal(got.timeline?.[0]?.event, 'submitted');
    assert.equal(f.calls[0]?.url.pathname, '/base/v1/jobs/a%2Fb');
  });
});

describe('Client.jobs', () => {
  it('follows next_cursor across pages and passes the filters', async () => {
    const f = scripted([
      () => json(200, { jobs: [job('completed', { id: 'a' }), job('completed', { id: 'b' })], next_cursor: 'c1' }),
      () => json(200, { jobs: [job('completed', { id: 'c' })], next_cursor: 'c2' }),
      () => json(200, { jobs: [], next_cursor: null }),
    ]);
    const since = new Date('2026-01-01T00:00:00Z');
    const ids: string[] = [];
    for await (const j of client(f).jobs({ state: 'completed', task: 't2v-A14B', since, limit: 2 })) ids.push(j.id);
    assert.deepEqual(ids, ['a', 'b', 'c']);
    const q = f.calls.map((c) => queryOf(c.url));
    assert.deepEqual(q[0], { state: 'completed', task: 't2v-A14B', since: '2026-01-01T00:00:00.000Z', limit: '2' });
    assert.equal(q[1]?.cursor, 'c1');
    assert.equal(q[2]?.cursor, 'c2');
  });

  it('stops fetching when the caller has enough', async () => {
    const f = scripted([() => json(200, { jobs: [job('queued', { id: 'a' }), job('queued', { id: 'b' })], next_cursor: 'c1' })]);
    const got = await client(f).jobs().toArray(1);
    assert.deepEqual(got.map((j) => j.id), ['a']);
    assert.equal(f.calls.length, 1);
  });

  it('lists workers and queues', async () => {
    const f = scripted([
      () => json(200, { workers: [{ name: 'w1', slots: 1, busy: 0, online: true }] }),
      () => json(200, { queues: [{ name: 'genworker.jobs', depth: 3 }] }),
    ]);
    const c = client(f);
    assert.equal((await c.workers())[0]?.name, 'w1');
    assert.equal((await c.queues())[0]?.depth, 3);
  });
});
