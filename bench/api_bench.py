#!/usr/bin/env python3
"""The HTTP API's figures (not a test; minutes), on the private broker, with the release binary:

  get      one job's status with 100,000 jobs in the ledger window: GET /v1/jobs/{id}
           latency from one sequential keep-alive client (p50 / p99), throughput with wrk
           (random ids), and the dashboard's RSS after catch-up
  submit   submits per second: POST /v1/jobs through wrk (a unique id per request) beside
           direct AMQP publishes to the jobs exchange with publisher confirms (one confirm
           per message, and batched); no worker consumes
  e2e      submit -> result for a trivial stand-in job with one worker: POST + GET /wait
           against AMQP (publish with reply_to, consume the result), alternating, p50 / p99

    python3 bench/api_bench.py [--bin .build/dist/genworker] [--amqp-url URL] [--parts get,submit,e2e]

Environment: GENWORKER_BIN, BENCH_AMQP_URL (amqp://guest:guest@127.0.0.1:5693/),
BENCH_API_PORT (8497), BENCH_METRICS_PORT (9497). Each part declares a topology of its own
(a fresh prefix) and deletes it afterwards (--keep leaves it). Prints one JSON summary.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import TOPOLOGY, topology_yaml  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDIN = os.path.join(ROOT, "examples", "standin")
TASK = "t2v-A14B"


# --- helpers ---------------------------------------------------------------------------------

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def summary_ms(xs):
    return {"n": len(xs), "p50_ms": round(pct(xs, 0.5), 3), "p90_ms": round(pct(xs, 0.9), 3),
            "p99_ms": round(pct(xs, 0.99), 3), "max_ms": round(max(xs), 3) if xs else None,
            "mean_ms": round(sum(xs) / len(xs), 3) if xs else None}


def load():
    out = subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()
    return {"uptime": out, "loadavg": [round(x, 2) for x in os.getloadavg()]}


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = {l.split(":")[0]: int(l.split()[1]) for l in f if l.startswith(("VmRSS:", "RssAnon:", "RssFile:", "VmHWM:"))}
    return {"vmrss_mib": round(fields["VmRSS"] / 1024, 1), "rss_anon_mib": round(fields.get("RssAnon", 0) / 1024, 1),
            "rss_file_mib": round(fields.get("RssFile", 0) / 1024, 1), "vmhwm_mib": round(fields.get("VmHWM", 0) / 1024, 1)}


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def amqp_connect(url):
    if not url.endswith("/"):
        url += "/"
    connection = pika.BlockingConnection(pika.URLParameters(url + "%2f?heartbeat=0"))
    return connection, connection.channel()


def job_body(job, prompt, steps=1):
    return json.dumps({"id": job, "task": TASK, "params": {"prompt": prompt, "size": "832*480", "sample_steps": steps}}).encode()


JSON_PERSISTENT = pika.BasicProperties(content_type="application/json", delivery_mode=2)


class Stack:
    """One part's topology, config (tokens, a stand-in worker) and the processes it starts."""

    def __init__(self, args, name):
        self.args, self.name = args, name
        self.work = tempfile.mkdtemp(prefix="api-bench-%s-" % name)
        self.prefix = "ab-%s-%s" % (name, uuid.uuid4().hex[:6])
        self.procs = {}
        self.tokens = {role: secrets.token_urlsafe(24) for role in ("submit", "read")}
        for d in ("out", "in", "ckpt"):
            os.makedirs(os.path.join(self.work, d))
        self.config = os.path.join(self.work, "genworker.yaml")
        sha = lambda t: hashlib.sha256(t.encode()).hexdigest()  # noqa: E731
        with open(self.config, "w") as f:
            f.write("amqp:\n  url: %s\n" % args.amqp_url)
            f.write("worker:\n  name: %s-worker\n  slots: 1\n  lock_dir: %s\n" % (self.prefix, self.work))
            f.write(topology_yaml(self.prefix))
            f.write("wan:\n  python: %s\n  repo: %s\n  checkpoints: %s\n" % (sys.executable, STANDIN, os.path.join(self.work, "ckpt")))
            f.write("inputs:\n  roots: [%s]\noutputs:\n  dir: %s\n" % (os.path.join(self.work, "in"), os.path.join(self.work, "out")))
            f.write("supervisor:\n  grace_s: 3\nmetrics:\n  port: %d\n" % args.metrics_port)
            f.write("dashboard:\n  port: %d\n  max_jobs: %d\n" % (args.api_port, args.max_jobs))
            f.write("api:\n  tokens:\n    bench-submit: submit:%s\n    bench-read: read:%s\n"
                    % (sha(self.tokens["submit"]), sha(self.tokens["read"])))
        subprocess.run([args.bin, "declare", "--config", self.config], check=True, stdout=subprocess.DEVNULL)
        self.base = "http://127.0.0.1:%d" % args.api_port

    def q(self, suffix):
        return "%s.%s" % (self.prefix, suffix)

    def start(self, what, ready_text, timeout=600):
        log = os.path.join(self.work, what + ".log")
        t0 = time.time()
        proc = subprocess.Popen([self.args.bin, "run" if what == "worker" else "dashboard", "--config", self.config],
                                stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.procs[what] = proc
        while time.time() - t0 < timeout:
            text = open(log).read()
            if all(r in text for r in ready_text):
                return proc, time.time() - t0, text
            if proc.poll() is not None:
                raise RuntimeError("%s exited (%s): %s" % (what, proc.returncode, text[-2000:]))
            time.sleep(0.02)
        raise RuntimeError("%s not ready after %d s (log %s)" % (what, timeout, log))

    def log_text(self, what):
        return open(os.path.join(self.work, what + ".log")).read()

    def stop(self):
        for what, proc in list(self.procs.items()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for what, proc in list(self.procs.items()):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs.clear()

    def delete_topology(self):
        try:
            connection, channel = amqp_connect(self.args.amqp_url)
        except Exception as error:  # noqa: BLE001 - best effort
            return "could not connect: %s" % error
        names = dict(TOPOLOGY)
        queues = [self.q(names[k]) for k in ("jobs_queue", "cancel_stream", "results_queue", "dead_queue", "unrouted_queue", "ledger_stream")]
        exchanges = [self.q(names[k]) for k in ("jobs_exchange", "cancel_exchange", "events_exchange", "dead_exchange", "unrouted_exchange")]
        for kind, name in [("q", n) for n in queues] + [("x", n) for n in exchanges]:
            try:
                if kind == "q":
                    channel.queue_delete(name)
                else:
                    channel.exchange_delete(name)
            except pika.exceptions.AMQPError:
                channel = connection.channel()
        connection.close()
        return "deleted"


class HTTP:
    """One keep-alive connection."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=90)

    def call(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if body is not None:
            h["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=90)
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
        return r.status, r.read()


# --- wrk -------------------------------------------------------------------------------------

WRK_COMMON = r"""
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  statuses = {}
  math.randomseed(os.time() * 1000 + tid)
end
function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ", ")))
end
"""

WRK_GET = r"""
wrk.method = "GET"
%(auth)s
function request()
  return wrk.format(nil, string.format("/v1/jobs/%(id_prefix)s%%06d", math.random(0, %(n)d - 1)))
end
"""

WRK_POST = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
function request()
  counter = counter + 1
  local id = string.format("%(tag)s-%%d-%%d", tid, counter)
  local body = '{"id": "' .. id .. '", "task": "t2v-A14B", "params": {"prompt": "bench", "size": "832*480", "sample_steps": 1}}'
  return wrk.format(nil, "/v1/jobs", nil, body)
end
"""


def run_wrk(stack, script, threads, conns, duration, path):
    lua = os.path.join(stack.work, "wrk-%d.lua" % int(time.time() * 1000))
    with open(lua, "w") as f:
        f.write(WRK_COMMON + script)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--timeout", "10s", "-s", lua, stack.base + path]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=duration + 60).stdout
    line = next((l for l in out.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        return {"command": " ".join(cmd), "error": out[-2000:]}
    r = json.loads(line[len("WRKJSON "):])
    r["requests_per_s"] = round(r["requests"] / (r["duration_us"] / 1e6), 1)
    r["latency_ms"] = {k: round(v / 1000, 3) for k, v in r.pop("latency_us").items()}
    r["non_2xx"] = sum(v for k, v in r["statuses"].items() if not k.startswith("2"))
    r["command"] = " ".join(cmd[:-3]) + " -s <lua> " + cmd[-1]
    return r


# --- 1. one job's status at 100,000 jobs --------------------------------------------------------

def fill_ledger(stack, jobs, id_prefix):
    """Per job, as fleet_bench.ready(): a submission through the jobs exchange, a claim, an end, a heartbeat."""
    connection, channel = amqp_connect(stack.args.amqp_url)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ledger = stack.q("ledger")
    as_worker = pika.BasicProperties(user_id="guest")
    prompt = "a prompt of ordinary length for a video"
    t0 = time.time()
    for i in range(jobs):
        job = "%s%06d" % (id_prefix, i)
        body = job_body(job, prompt, 40)
        worker = "bench-%d" % (i % 8)
        channel.basic_publish(stack.q("jobs"), TASK, body)
        claim = {"ledger": 1, "kind": "claim", "worker": worker, "at": now, "ref": uuid.uuid4().hex, "id": job,
                 "task": TASK, "job": body.decode()}
        end = {"ledger": 1, "kind": "end", "worker": worker, "at": now, "ref": uuid.uuid4().hex, "id": job, "attempt": 1,
               "result": {"version": 1, "id": job, "task": TASK, "event": "completed", "status": "completed",
                          "worker": worker, "output": "/out/%s.mp4" % job, "elapsed_s": 400.0}}
        beat = {"ledger": 1, "kind": "heartbeat", "worker": worker, "at": now, "ref": uuid.uuid4().hex,
                "counter": i, "runs": [], "slots": 1, "node": "n", "version": "x"}
        for record in (claim, end, beat):
            channel.basic_publish("", ledger, json.dumps(record).encode(), as_worker)
    connection.close()
    return time.time() - t0


def part_get(args):
    stack = Stack(args, "get")
    out = {"prefix": stack.prefix, "jobs_in_window": args.jobs, "load_at_start": load()}
    id_prefix = "b"
    try:
        out["fill_s"] = round(fill_ledger(stack, args.jobs, id_prefix), 1)
        out["ledger_records"] = args.jobs * 4
        # The submissions sit in the jobs queue (no worker); gone, they cost the broker nothing during the measurement.
        connection, channel = amqp_connect(args.amqp_url)
        channel.queue_purge(stack.q("jobs"))
        connection.close()
        proc, up_s, _ = stack.start("dashboard", ["dashboard on http://"])
        http_ = HTTP(args.api_port)
        last = "%s%06d" % (id_prefix, args.jobs - 1)
        t0 = time.time()
        while http_.call("GET", "/v1/jobs/" + last)[0] != 200:
            if time.time() - t0 > 600:
                raise RuntimeError("GET %s never answered 200" % last)
            time.sleep(0.05)
        out["start_to_last_id_200_s"] = round(up_s + time.time() - t0, 2)
        caught = next((l for l in stack.log_text("dashboard").splitlines() if "ledger caught up" in l), "")
        out["dashboard_log_caught_up"] = caught.split("] ", 1)[-1]
        time.sleep(2)
        out["dashboard_rss_after_catch_up"] = rss_kib(proc.pid)
        status, body = http_.call("GET", "/v1/jobs/" + last)
        out["sample_job"] = {"status": status, "bytes": len(body), "state": json.loads(body).get("state")}

        rnd = random.Random(1)
        auth = {"Authorization": "Bearer " + stack.tokens["read"]}
        for _ in range(500):  # warm-up
            http_.call("GET", "/v1/jobs/%s%06d" % (id_prefix, rnd.randrange(args.jobs)), headers=auth)
        for label, headers, n in (("with_read_token", auth, args.get_requests), ("anonymous", {}, max(2000, args.get_requests // 10))):
            lat, statuses = [], {}
            cpu0, t0 = cpu_s(proc.pid), time.perf_counter()
            for _ in range(n):
                path = "/v1/jobs/%s%06d" % (id_prefix, rnd.randrange(args.jobs))
                t = time.perf_counter()
                status, _ = http_.call("GET", path, headers=headers)
                lat.append((time.perf_counter() - t) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            wall = time.perf_counter() - t0
            out["sequential_get_" + label] = dict(summary_ms(lat), statuses=statuses, requests_per_s=round(n / wall, 1),
                                                  dashboard_cpu_ms_per_request=round((cpu_s(proc.pid) - cpu0) * 1000 / n, 3))
        out["load_before_wrk"] = load()
        wrk_runs = []
        for conns in args.wrk_conns:
            script = WRK_GET % {"auth": 'wrk.headers["Authorization"] = "Bearer %s"' % stack.tokens["read"], "id_prefix": id_prefix,
                                "n": args.jobs}
            cpu0 = cpu_s(proc.pid)
            r = run_wrk(stack, script, args.wrk_threads, conns, args.wrk_duration, "/v1/jobs/x")
            r["dashboard_cpu_s"] = round(cpu_s(proc.pid) - cpu0, 2)
            r["load_after"] = load()["loadavg"]
            wrk_runs.append(r)
        out["wrk_get"] = wrk_runs
        out["dashboard_rss_after_load"] = rss_kib(proc.pid)
        out["dashboard_alive"] = proc.poll() is None
    finally:
        stack.stop()
        out["topology"] = "kept" if args.keep else stack.delete_topology()
    return out


# --- 2. submits per second ----------------------------------------------------------------------

def queue_depth(url, queue):
    connection, channel = amqp_connect(url)
    depth = channel.queue_declare(queue, passive=True).method.message_count
    connection.close()
    return depth


def purge(url, queue):
    connection, channel = amqp_connect(url)
    channel.queue_purge(queue)
    connection.close()


def amqp_confirm_each(stack, n):
    connection, channel = amqp_connect(stack.args.amqp_url)
    channel.confirm_delivery()
    tag = uuid.uuid4().hex[:6]
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        channel.basic_publish(stack.q("jobs"), TASK, job_body("ce-%s-%d" % (tag, i), "bench"), JSON_PERSISTENT)  # waits for the confirm
        lat.append((time.perf_counter() - t) * 1000)
    wall = time.perf_counter() - t0
    connection.close()
    return dict({"messages": n, "per_s": round(n / wall, 1)}, publish_confirm=summary_ms(lat))


def amqp_confirm_batched(stack, n, batch):
    """Publishes `batch` messages, waits for all their confirms, again (SelectConnection: pika's blocking
    channel confirms one message at a time)."""
    url = stack.args.amqp_url if stack.args.amqp_url.endswith("/") else stack.args.amqp_url + "/"
    tag = uuid.uuid4().hex[:6]
    st = {"sent": 0, "outstanding": set(), "nacks": 0, "t0": None, "t1": None, "error": None, "next_tag": 1}

    def publish_batch(channel):
        for _ in range(min(batch, n - st["sent"])):
            channel.basic_publish(stack.q("jobs"), TASK, job_body("cb-%s-%d" % (tag, st["sent"]), "bench"), JSON_PERSISTENT)
            st["outstanding"].add(st["next_tag"])
            st["next_tag"] += 1
            st["sent"] += 1

    def on_confirm(frame):
        m = frame.method
        if isinstance(m, pika.spec.Basic.Nack):
            st["nacks"] += 1
        if m.multiple:
            st["outstanding"] = {t for t in st["outstanding"] if t > m.delivery_tag}
        else:
            st["outstanding"].discard(m.delivery_tag)
        if not st["outstanding"]:
            if st["sent"] >= n:
                st["t1"] = time.perf_counter()
                connection.close()
            else:
                publish_batch(channel_box[0])

    channel_box = []

    def on_channel(channel):
        channel_box.append(channel)

        def confirmed(_):
            st["t0"] = time.perf_counter()
            publish_batch(channel)
        channel.confirm_delivery(ack_nack_callback=on_confirm, callback=confirmed)

    def on_error(_, error):
        st["error"] = str(error)
        connection.ioloop.stop()

    def on_closed(*_):
        connection.ioloop.stop()

    connection = pika.SelectConnection(pika.URLParameters(url + "%2f?heartbeat=0"),
                                       on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
                                       on_open_error_callback=on_error, on_close_callback=on_closed)
    connection.ioloop.start()
    if st["error"] or st["t1"] is None:
        return {"batch": batch, "error": st["error"] or "did not finish", "sent": st["sent"]}
    return {"batch": batch, "messages": n, "nacks": st["nacks"], "per_s": round(n / (st["t1"] - st["t0"]), 1)}


def part_submit(args):
    stack = Stack(args, "submit")
    out = {"prefix": stack.prefix, "load_at_start": load()}
    jobs_queue = stack.q("jobs")
    try:
        proc, up_s, _ = stack.start("dashboard", ["dashboard on http://", "ledger caught up"])
        auth = {"Authorization": "Bearer " + stack.tokens["submit"]}
        http_ = HTTP(args.api_port)
        tag = uuid.uuid4().hex[:6]
        # One client, sequential: what one submit costs.
        lat, statuses = [], {}
        for i in range(args.seq_submits + 20):
            t = time.perf_counter()
            status, _ = http_.call("POST", "/v1/jobs", body=job_body("sq-%s-%d" % (tag, i), "bench"), headers=auth)
            if i >= 20:  # the first ones warm up
                lat.append((time.perf_counter() - t) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
        out["sequential_post"] = dict(summary_ms(lat), statuses=statuses)
        # The same id again: answered from the fold (200), publishes nothing.
        lat, statuses = [], {}
        for i in range(200):
            t = time.perf_counter()
            status, _ = http_.call("POST", "/v1/jobs", body=job_body("sq-%s-%d" % (tag, 20 + i % args.seq_submits), "bench"), headers=auth)
            lat.append((time.perf_counter() - t) * 1000)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        out["sequential_post_known_id"] = dict(summary_ms(lat), statuses=statuses)
        time.sleep(1)
        purge(args.amqp_url, jobs_queue)
        wrk_runs = []
        for conns in args.wrk_conns:
            script = WRK_POST % {"token": stack.tokens["submit"], "tag": "wk%d-%s" % (conns, uuid.uuid4().hex[:6])}
            cpu0 = cpu_s(proc.pid)
            r = run_wrk(stack, script, args.wrk_threads, conns, args.wrk_duration, "/v1/jobs")
            r["dashboard_cpu_s"] = round(cpu_s(proc.pid) - cpu0, 2)
            time.sleep(1)
            r["jobs_queue_depth_after"] = queue_depth(args.amqp_url, jobs_queue)
            r["load_after"] = load()["loadavg"]
            wrk_runs.append(r)
            purge(args.amqp_url, jobs_queue)
        out["wrk_post"] = wrk_runs
        out["dashboard_rss_after"] = rss_kib(proc.pid)
        out["dashboard_alive"] = proc.poll() is None
        # Direct AMQP, the same exchange and the same kind of message (persistent JSON); the dashboard
        # still follows the ledger (as in production), so the broker does the same work per job.
        out["load_before_amqp"] = load()
        out["amqp_confirm_each"] = amqp_confirm_each(stack, args.amqp_publishes)
        purge(args.amqp_url, jobs_queue)
        out["amqp_confirm_batched"] = []
        for batch in args.batches:
            out["amqp_confirm_batched"].append(amqp_confirm_batched(stack, max(args.amqp_publishes, batch * 20), batch))
            purge(args.amqp_url, jobs_queue)
        out["load_at_end"] = load()
    finally:
        stack.stop()
        out["topology"] = "kept" if args.keep else stack.delete_topology()
    return out


# --- 3. submit -> result ------------------------------------------------------------------------

def part_e2e(args):
    stack = Stack(args, "e2e")
    out = {"prefix": stack.prefix, "jobs_per_path": args.e2e_jobs, "load_at_start": load()}
    prompt = "x [[step_s=0.001]]"
    try:
        stack.start("worker", ["consuming"])
        stack.start("dashboard", ["dashboard on http://", "ledger caught up"])
        auth = {"Authorization": "Bearer " + stack.tokens["submit"]}
        http_ = HTTP(args.api_port)
        connection, channel = amqp_connect(args.amqp_url)
        channel.confirm_delivery()
        reply = channel.queue_declare("", exclusive=True).method.queue
        replies = channel.consume(reply, auto_ack=True, inactivity_timeout=0.5)
        tag = uuid.uuid4().hex[:6]
        api, api_post, api_wait_states, amqp, amqp_status, failures = [], [], {}, [], {}, []

        def via_api(job):
            t0 = time.perf_counter()
            status, body = http_.call("POST", "/v1/jobs", body=job_body(job, prompt), headers=auth)
            t1 = time.perf_counter()
            if status not in (200, 202):
                failures.append({"path": "api-post", "id": job, "status": status, "body": body[:300].decode(errors="replace")})
                return None
            status, body = http_.call("GET", "/v1/jobs/%s/wait?timeout_s=60" % job)
            t2 = time.perf_counter()
            state = json.loads(body).get("state") if status == 200 else "http-%d" % status
            api_wait_states[state] = api_wait_states.get(state, 0) + 1
            if state != "completed":
                failures.append({"path": "api-wait", "id": job, "status": status, "body": body[:300].decode(errors="replace")})
            return (t1 - t0) * 1000, (t2 - t0) * 1000

        def via_amqp(job):
            t0 = time.perf_counter()
            channel.basic_publish(stack.q("jobs"), TASK, job_body(job, prompt),
                                  pika.BasicProperties(content_type="application/json", delivery_mode=2, reply_to=reply,
                                                       correlation_id=job, message_id=job, timestamp=int(time.time())))
            deadline = time.time() + 60
            while time.time() < deadline:
                method, props, body = next(replies)
                if method is None:
                    continue
                result = json.loads(body)
                if result.get("id") != job:
                    continue  # a late copy of an earlier one
                amqp_status[result.get("status")] = amqp_status.get(result.get("status"), 0) + 1
                return (time.perf_counter() - t0) * 1000
            failures.append({"path": "amqp", "id": job, "error": "no result in 60 s"})
            return None

        for i in range(3):  # warm-up (first runs: page cache, Python imports)
            via_api("wa-%s-%d" % (tag, i))
            via_amqp("wq-%s-%d" % (tag, i))
        api_wait_states.clear()
        amqp_status.clear()
        for i in range(args.e2e_jobs):  # alternating, so load drift hits both alike
            r = via_api("ea-%s-%d" % (tag, i))
            if r:
                api_post.append(r[0])
                api.append(r[1])
            r = via_amqp("eq-%s-%d" % (tag, i))
            if r:
                amqp.append(r)
        connection.close()
        out["api_post_then_wait"] = dict(summary_ms(api), states=api_wait_states)
        out["api_post_only"] = summary_ms(api_post)
        out["amqp_publish_confirm_then_reply"] = dict(summary_ms(amqp), statuses=amqp_status)
        out["failures"] = failures[:10]
        out["failure_count"] = len(failures)
        out["load_at_end"] = load()
    finally:
        stack.stop()
        out["topology"] = "kept" if args.keep else stack.delete_topology()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.environ.get("GENWORKER_BIN", os.path.join(ROOT, ".build", "dist", "genworker")))
    p.add_argument("--amqp-url", default=os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5693/"))
    p.add_argument("--api-port", type=int, default=int(os.environ.get("BENCH_API_PORT", "8497")))
    p.add_argument("--metrics-port", type=int, default=int(os.environ.get("BENCH_METRICS_PORT", "9497")))
    p.add_argument("--parts", default="get,submit,e2e")
    p.add_argument("--jobs", type=int, default=100_000, help="jobs in the ledger window (part get)")
    p.add_argument("--max-jobs", type=int, default=200_000, help="dashboard.max_jobs")
    p.add_argument("--get-requests", type=int, default=20_000)
    p.add_argument("--seq-submits", type=int, default=500)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--wrk-conns", default="16,64", help="comma-separated; one wrk run each")
    p.add_argument("--wrk-duration", type=int, default=15)
    p.add_argument("--amqp-publishes", type=int, default=5000)
    p.add_argument("--batches", default="100,1000")
    p.add_argument("--e2e-jobs", type=int, default=50)
    p.add_argument("--keep", action="store_true", help="leave the topologies on the broker")
    args = p.parse_args()
    args.wrk_conns = [int(x) for x in args.wrk_conns.split(",")]
    args.batches = [int(x) for x in args.batches.split(",")]
    for port in (args.api_port, args.metrics_port):
        if not port_free(port):
            sys.exit("api_bench: port %d is in use" % port)
    if not shutil.which("wrk"):
        sys.exit("api_bench: no wrk (apt-get install -y wrk)")
    st = os.stat(args.bin)
    report = {"binary": args.bin, "binary_mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)),
              "binary_sha256_12": hashlib.sha256(open(args.bin, "rb").read()).hexdigest()[:12],
              "git_head": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE, text=True).stdout.strip(),
              "amqp_url": args.amqp_url, "api_port": args.api_port, "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    parts = args.parts.split(",")
    for name, fn in (("get", part_get), ("submit", part_submit), ("e2e", part_e2e)):
        if name in parts:
            try:
                report[name] = fn(args)
            except Exception as error:  # noqa: BLE001 - report it, go on with the next part
                report[name] = {"error": "%s: %s" % (type(error).__name__, error)}
            print("api_bench: %s done" % name, file=sys.stderr, flush=True)
    report["load_at_end"] = load()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
