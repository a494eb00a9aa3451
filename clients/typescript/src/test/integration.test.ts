// Integration tests against the REAL API (no mocks). Environment:
//   GENWORKER_API_URL         the API's base URL (unset: every case is skipped)
//   GENWORKER_API_TOKEN       a token with role submit
//   GENWORKER_API_TOKEN_READ  a token with role read
//   GENWORKER_API_RESTART     a shell command that restarts the API
// The stack runs a stand-in generator: a t2v-A14B job whose prompt holds [[step_s=S]] takes
// sample_steps × S seconds. The worker has one slot, so the cases run one after another.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exec, execFile, type ExecOptions } from 'node:child_process';
import process from 'node:process';
import {
  Client,
  ForbiddenError,
  JobCancelledError,
  NotFoundError,
  UnauthorizedError,
  WaitTimeoutError,
  isTerminal,
  type JobState,
  type JobStatus,
  type T2VA14BParams,
} from '../index.js';

const API = process.env.GENWORKER_API_URL;
const TOKEN = process.env.GENWORKER_API_TOKEN;
const TOKEN_READ = process.env.GENWORKER_API_TOKEN_READ;
const RESTART = process.env.GENWORKER_API_RESTART;

const skip: string | false = API ? false : 'GENWORKER_API_URL unset';
const skipRead: string | false = skip || (TOKEN_READ ? false : 'GENWORKER_API_TOKEN_READ unset');
const skipRestart: string | false = skip || (RESTART ? false : 'GENWORKER_API_RESTART unset');

/** Unique per run: ids are never reused across runs (a cancelled id stays cancelled for 24 h). */
const RUN = `ts-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const RUN_START = new Date(Date.now() - 5000);

/** About 1 s of stand-in generation. */
const FAST: T2VA14BParams = { prompt: 'a red fox [[step_s=0.05]]', size: '832*480', sample_steps: 20 };
/** About 20 s: a job to cancel while it runs, or to keep the worker's one slot busy. */
const LONG: T2VA14BParams = { prompt: 'a red fox [[step_s=0.5]]', size: '832*480', sample_steps: 40 };

const T = 180_000;

function client(token = TOKEN, extra: Partial<ConstructorParameters<typeof Client>[0]> = {}): Client {
  const opts: ConstructorParameters<typeof Client>[0] = { url: API as string, ...extra };
  if (token !== undefined) opts.token = token;
  return new Client(opts);
}

function run(kind: 'exec' | 'node', arg: string, env: Record<string, string | undefined>, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts: ExecOptions = { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 };
    const done = (err: Error | null, stdout: string, stderr: string): void => {
      if (err) reject(new Error(`${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolve(stdout);
    };
    if (kind === 'exec') exec(arg, opts, done);
    else execFile(process.execPath, ['--input-type=module', '-e', arg], opts, done);
  });
}

const RANK: Record<JobState, number> = { queued: 0, running: 1, completed: 2, failed: 2, cancelled: 2 };

/** Polls the status until `pred` holds (or fails after `ms`). */
async function until(c: Client, id: string, pred: (j: JobStatus) => boolean, ms = 90_000): Promise<JobStatus> {
  const end = Date.now() + ms;
  for (;;) {
    const j = await c.job(id).status();
    if (pred(j)) return j;
    if (Date.now() > end) assert.fail(`job ${id}: still ${j.state} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function collect(it: AsyncIterable<JobStatus>): Promise<JobStatus[]> {
  const out: JobStatus[] = [];
  for await (const j of it) out.push(j);
  return out;
}

describe('genworker API (integration)', { skip }, () => {
  before(async () => {
    // The API may still be starting: queues() retries connection errors and 503s.
    await client().queues();
  });

  it('submit → wait: completed, with its result', { timeout: T }, async () => {
    const c = client();
    const id = `${RUN}-basic`;
    const job = await c.submit('t2v-A14B', FAST, { id, timeoutS: 600 });
    assert.equal(job.id, id);
    assert.ok(['queued', 'running', 'completed'].includes(job.state), job.state);
    const done = await c.job(id).wait({ timeoutMs: 120_000 });
    assert.equal(done.state, 'completed');
    assert.equal(done.result?.status ?? done.result?.event, 'completed');
    assert.equal(done.result?.id, id);
    const st = await c.job(id).status();
    assert.equal(st.state, 'completed');
    const events = (st.timeline ?? []).map((e) => e.event);
    assert.ok(events.includes('submitted') && events.includes('ended'), `timeline: ${events.join(',')}`);
  });

  it('a generated id is a valid id', { timeout: T }, async () => {
    const c = client();
    const job = await c.submit('t2v-A14B', FAST);
    assert.match(job.id, /^[A-Za-z0-9_-]{1,128}$/);
    assert.equal((await c.job(job.id).wait({ timeoutMs: 120_000 })).state, 'completed');
  });

  it('the same id twice → one job, one result', { timeout: T }, async () => {
    const c = client();
    const id = `${RUN}-dup`;
    const first = await c.submit('t2v-A14B', FAST, { id });
    const second = await c.submit('t2v-A14B', FAST, { id });
    assert.equal(first.id, id);
    assert.equal(second.id, id);
    const done = await c.job(id).wait({ timeoutMs: 120_000 });
    const again = await c.submit('t2v-A14B', FAST, { id });
    assert.equal(again.state, 'completed', 'submitted after its end: the recorded job, nothing runs');
    assert.deepEqual(again.result, done.result);
    const st = await c.job(id).status();
    const claims = (st.timeline ?? []).filter((e) => e.event === 'claimed');
    assert.equal(claims.length, 1, `one run: ${JSON.stringify(st.timeline)}`);
    assert.equal(st.attempt ?? 1, 1);
    // The list shows it once.
    let seen = 0;
    for await (const j of c.jobs({ task: 't2v-A14B', since: RUN_START, limit: 2 })) if (j.id === id) seen++;
    assert.equal(seen, 1);
  });

  it('re-attach from another process → wait', { timeout: T }, async () => {
    const c = client();
    const id = `${RUN}-reattach`;
    await c.submit('t2v-A14B', FAST, { id });
    const script = `
      const { Client } = await import(process.env.CLIENT_MODULE);
      const c = new Client({ url: process.env.GENWORKER_API_URL, token: process.env.GENWORKER_API_TOKEN });
      const j = await c.job(process.env.JOB_ID).wait({ timeoutMs: 120000 });
      console.log(JSON.stringify({ id: j.id, state: j.state, status: j.result && j.result.status }));
    `;
    const out = await run('node', script, { CLIENT_MODULE: new URL('../index.js', import.meta.url).href, JOB_ID: id }, 150_000);
    const got = JSON.parse(out.trim().split('\n').pop() as string) as { id: string; state: string; status: string };
    assert.deepEqual(got, { id, state: 'completed', status: 'completed' });
  });

  it('events to the end', { timeout: T }, async () => {
    const c = client();
    const id = `${RUN}-events`;
    await c.submit('t2v-A14B', FAST, { id });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error('events: no end within 120 s')), 120_000);
    let seen: JobStatus[];
    try {
      seen = await collect(c.job(id).events({ signal: ac.signal }));
    } finally {
      clearTimeout(timer);
    }
    assert.ok(seen.length >= 1);
    for (const j of seen) assert.equal(j.id, id);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(RANK[(seen[i] as JobStatus).state] >= RANK[(seen[i - 1] as JobStatus).state], `states went back: ${seen.map((j) => j.state)}`);
    }
    const last = seen[seen.length - 1] as JobStatus;
    assert.equal(last.state, 'completed');
    assert.equal(seen.filter((j) => isTerminal(j.state)).length, 1, 'the end is seen once');
    // Following an ended job gives its end at once.
    const again = await collect(c.job(id).events());
    assert.equal(again[again.length - 1]?.state, 'completed');
  });

  describe('a long job, a job queued behind it, cancels', () => {
    const long = `${RUN}-long`;
    const queued = `${RUN}-queued`;

    it('wait with a short timeout → WaitTimeoutError, the job runs on', { timeout: T }, async () => {
      const c = client();
      await c.submit('t2v-A14B', LONG, { id: long });
      const t0 = Date.now();
      await assert.rejects(c.job(long).wait({ timeoutMs: 1500 }), (e: unknown) => {
        assert.ok(e instanceof WaitTimeoutError, String(e));
        assert.equal(e.id, long);
        return true;
      });
      assert.ok(Date.now() - t0 < 10_000, 'the timeout is kept');
      const st = await c.job(long).status();
      assert.ok(st.state === 'queued' || st.state === 'running', st.state);
    });

    it('cancel a queued job', { timeout: T }, async () => {
      const c = client();
      await until(c, long, (j) => j.state === 'running');
      await c.submit('t2v-A14B', LONG, { id: queued });
      const before = await c.job(queued).status();
      assert.equal(before.state, 'queued', 'the one slot is busy with the long job');
      const after = await c.job(queued).cancel({ waitS: 0 });
      assert.equal(after.cancel_requested, true);
      assert.ok(after.state === 'queued' || after.state === 'cancelled', after.state);
    });

    it('cancel a running job → cancelled; wait rejects JobCancelledError', { timeout: T }, async () => {
      const c = client();
      const st = await c.job(long).status();
      assert.equal(st.state, 'running');
      const t0 = Date.now();
      const after = await c.job(long).cancel({ waitS: 60 });
      assert.equal(after.state, 'cancelled', JSON.stringify(after));
      assert.equal(after.cancel_requested, true);
      assert.equal(after.result?.reason, 'cancelled_while_running');
      assert.ok(Date.now() - t0 < 60_000);
      await assert.rejects(c.job(long).wait({ timeoutMs: 30_000 }), (e: unknown) => {
        assert.ok(e instanceof JobCancelledError, String(e));
        assert.equal(e.job.state, 'cancelled');
        assert.equal(e.reason, 'cancelled_while_running');
        return true;
      });
      // The queued one is taken next, and ends cancelled without running.
      await assert.rejects(c.job(queued).wait({ timeoutMs: 90_000 }), (e: unknown) => {
        assert.ok(e instanceof JobCancelledError, String(e));
        assert.equal(e.reason, 'cancelled_before_start');
        return true;
      });
    });
  });

  it('wrong token → 401', { timeout: T }, async () => {
    const bad = client(`wrong-${RUN}`);
    await assert.rejects(bad.job(`${RUN}-basic`).status(), (e: unknown) => {
      assert.ok(e instanceof UnauthorizedError, String(e));
      assert.equal(e.status, 401);
      assert.equal(e.code, 'unauthorized');
      return true;
    });
    await assert.rejects(bad.submit('t2v-A14B', FAST, { id: `${RUN}-unauthorized` }), UnauthorizedError);
    await assert.rejects(new Client({ url: API as string }).submit('t2v-A14B', FAST, { id: `${RUN}-anonymous` }), UnauthorizedError);
    // Nothing was submitted.
    await assert.rejects(client().job(`${RUN}-unauthorized`).status(), NotFoundError);
  });

  it('read token: reads work, submit and cancel → 403', { skip: skipRead, timeout: T }, async () => {
    const reader = client(TOKEN_READ);
    assert.equal((await reader.job(`${RUN}-basic`).status()).state, 'completed');
    await assert.rejects(reader.submit('t2v-A14B', FAST, { id: `${RUN}-forbidden` }), (e: unknown) => {
      assert.ok(e instanceof ForbiddenError, String(e));
      assert.equal(e.status, 403);
      assert.equal(e.code, 'forbidden');
      return true;
    });
    await assert.rejects(reader.job(`${RUN}-basic`).cancel({ waitS: 0 }), ForbiddenError);
    await assert.rejects(client().job(`${RUN}-forbidden`).status(), NotFoundError);
  });

  it('unknown job → 404', { timeout: T }, async () => {
    await assert.rejects(client().job(`${RUN}-nope`).status(), (e: unknown) => {
      assert.ok(e instanceof NotFoundError, String(e));
      assert.equal(e.code, 'not_found');
      return true;
    });
  });

  it('workers and queues', { timeout: T }, async () => {
    const c = client();
    const workers = await c.workers();
    assert.ok(workers.length >= 1, 'at least one worker');
    for (const w of workers) {
      assert.equal(typeof w.name, 'string');
      assert.equal(typeof w.slots, 'number');
      assert.equal(typeof w.online, 'boolean');
    }
    const queues = await c.queues();
    for (const q of queues) {
      assert.equal(typeof q.name, 'string');
      assert.equal(typeof q.depth, 'number');
    }
  });

  it('list jobs page by page', { timeout: T }, async () => {
    const c = client();
    const pages: number[] = [];
    const ids = new Set<string>();
    for await (const page of c.jobs({ since: RUN_START, limit: 2 }).pages()) {
      pages.push(page.jobs.length);
      for (const j of page.jobs) {
        assert.ok(!ids.has(j.id), `job ${j.id} on two pages`);
        ids.add(j.id);
      }
    }
    assert.ok(pages.length >= 2, `pages: ${pages}`);
    for (const id of ['basic', 'dup', 'reattach', 'events', 'long', 'queued']) assert.ok(ids.has(`${RUN}-${id}`), id);
    const cancelled = await c.jobs({ since: RUN_START, state: 'cancelled' }).toArray();
    assert.ok(cancelled.every((j) => j.state === 'cancelled'));
    assert.ok(cancelled.some((j) => j.id === `${RUN}-long`));
  });

  it('API restart in the middle of a wait → the wait and the events resume', { skip: skipRestart, timeout: 300_000 }, async () => {
    const c = client(TOKEN, { retry: { maxDelayMs: 2000, reconnectAttempts: 150 } });
    const id = `${RUN}-restart`;
    // About 10 s of generation: the API goes down and comes back while it runs.
    await c.submit('t2v-A14B', { ...FAST, prompt: 'a red fox [[step_s=0.5]]', sample_steps: 20 }, { id });
    await until(c, id, (j) => j.state === 'running');
    const waiting = c.job(id).wait({ timeoutMs: 240_000 });
    const following = collect(c.job(id).events());
    // Let both get their connections open first.
    await new Promise((r) => setTimeout(r, 1000));
    await run('exec', RESTART as string, {}, 180_000);
    const [done, seen] = await Promise.all([waiting, following]);
    assert.equal(done.state, 'completed');
    assert.equal(seen[seen.length - 1]?.state, 'completed');
    assert.equal(seen.filter((j) => isTerminal(j.state)).length, 1);
  });
});
