#!/usr/bin/env python3
"""genworker and Celery 5 on the same private broker, in one run, alternating (a benchmark,
not a test). Both run examples/standin/generate.py; Celery with the usual settings for long
GPU jobs (prefork, concurrency 1, prefetch multiplier 1, acks_late) through subprocess.run,
cancelled by revoke(terminate=True).

    scripts/bench-celery.sh [ROUNDS]      # builds, starts the broker, runs this, prints the tables
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchkit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
STANDIN = os.path.join(ROOT, "examples", "standin", "generate.py")
GENWORKER = os.environ.get("BENCH_GENWORKER", os.path.join(ROOT, ".build", "dist", "genworker"))
URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5679/")
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
N_DISPATCH, N_CANCEL, N_THROUGHPUT, IDLE_S = 20, 15, 50, 30


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def wait_for(path, timeout=20.0, poll=0.0005):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            try:
                with open(path) as f:
                    text = f.read()
                if text:
                    return text
            except OSError:
                pass
        time.sleep(poll)
    return None


def start_time(out, job_id, timeout=20.0):
    text = wait_for(benchkit.run_file(out, job_id, ".argv.json"), timeout)
    return json.loads(text) if text else None


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def tree(pid):
    """pid and its descendants, through /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    result, todo = [], [pid]
    while todo:
        p = todo.pop()
        result.append(p)
        todo.extend(children.get(p, []))
    return result


def cpu_and_rss(pids):
    ticks, rss = 0, 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            with open("/proc/%d/status" % pid) as f:
                rss += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return ticks / os.sysconf("SC_CLK_TCK"), rss / 1024.0


class System:
    """What both systems share: a worker process to stop and to measure."""
    proc = None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)

    def pids(self):
        return tree(self.proc.pid)


class Genworker(System):
    name = "genworker"

    def __init__(self, work):
        self.out = os.path.join(work, "gw-out")
        os.makedirs(self.out, exist_ok=True)
        self.prefix = "bench-gw-" + uuid.uuid4().hex[:6]
        self.config = os.path.join(work, "genworker.yaml")
        with open(self.config, "w") as f:
            f.write("""amqp:\n  url: %s\nworker:\n  name: bench\ntopology:\n""" % URL)
            for key, suffix in [("jobs_exchange", "jobs"), ("jobs_queue", "jobs"), ("cancel_exchange", "cancel"),
                                ("cancel_stream", "cancel.log"), ("events_exchange", "events"), ("results_queue", "results"),
                                ("dead_exchange", "dead"), ("dead_queue", "dead"), ("unrouted_exchange", "unrouted"),
                                ("unrouted_queue", "unrouted")]:
                f.write("  %s: %s.%s\n" % (key, self.prefix, suffix))
            f.write("wan:\n  python: %s\n  repo: %s\n  checkpoints: /tmp\noutputs:\n  dir: %s\nmetrics:\n  enabled: false\n"
                    % (PY, os.path.dirname(STANDIN), self.out))
        self.log = os.path.join(work, "genworker.log")
        self.proc = None
        # No heartbeats: this client idles while the other system is measured.
        self.conn = pika.BlockingConnection(pika.URLParameters(URL + "%2f?heartbeat=0"))
        self.ch = self.conn.channel()
        self.results = {}

    def start(self):
        self.proc = subprocess.Popen([GENWORKER, "run", "--config", self.config], stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT)
        for _ in range(400):
            if "consuming" in open(self.log).read().split("worker stopped")[-1]:
                break
            time.sleep(0.05)
        if not hasattr(self, "queue"):
            self.ch.confirm_delivery()
            self.queue = self.ch.queue_declare("", exclusive=True).method.queue
            for status in ("completed", "failed", "cancelled"):
                self.ch.queue_bind(self.queue, self.prefix + ".events", "*." + status)
            self.ch.basic_consume(self.queue, self._on_result, auto_ack=True)

    def submit(self, job_id, prompt, steps=20):
        job = {"id": job_id, "task": "t2v-A14B", "params": {"prompt": prompt, "size": "832*480", "sample_steps": steps}}
        self.ch.basic_publish(self.prefix + ".jobs", "t2v-A14B", json.dumps(job).encode(),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))

    def cancel(self, job_id):
        self.ch.basic_publish(self.prefix + ".cancel", "", json.dumps({"id": job_id}).encode(),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))

    def _on_result(self, channel, method, properties, body):
        event = json.loads(body)
        self.results[event["id"]] = (time.time(), event.get("status"))

    def poll_result(self, job_id):
        """Non-blocking: the time the terminal result arrived, or None."""
        if job_id not in self.results:
            self.conn.process_data_events(time_limit=0)
        return self.results.get(job_id, (None, None))[0]

    def wait_result(self, job_id, timeout=60):
        # Blocks in the socket until a result comes: a waiting client must not spin a core
        # (an earlier harness polled basic_get in a loop, which took a core from the
        # worker, the broker and the generator on this 2-core machine).
        end = time.time() + timeout
        while job_id not in self.results and time.time() < end:
            self.conn.process_data_events(time_limit=max(0.0, min(0.5, end - time.time())))
        return self.results.get(job_id, (None, None))


class CeleryWorker(System):
    name = "celery"

    def __init__(self, work):
        self.out = os.path.join(work, "celery-out")
        os.makedirs(self.out, exist_ok=True)
        self.log = os.path.join(work, "celery.log")
        os.environ["BENCH_CELERY_BROKER"] = URL
        os.environ["BENCH_CELERY_QUEUE"] = "bench-celery-" + uuid.uuid4().hex[:6]
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        import celery_app
        self.app = celery_app.app
        self.task = celery_app.generate
        self.pending = {}
        self.proc = None

    def start(self):
        before = open(self.log).read().count("ready.") if os.path.exists(self.log) else 0
        self.proc = subprocess.Popen([PY, "-m", "celery", "-A", "celery_app", "worker", "--pool=prefork", "--concurrency=1",
                                      "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info",
                                      "-Q", os.environ["BENCH_CELERY_QUEUE"]],
                                     cwd=os.path.join(ROOT, "bench"), stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        for _ in range(600):
            if os.path.exists(self.log) and open(self.log).read().count("ready.") > before:
                break
            time.sleep(0.05)

    def submit(self, job_id, prompt, steps=20):
        self.pending[job_id] = self.task.apply_async(args=[job_id, prompt, self.out, steps], task_id=job_id)

    def cancel(self, job_id):
        self.app.control.revoke(job_id, terminate=True, signal="SIGTERM")

    def poll_result(self, job_id):
        """Non-blocking: now, if the client already holds the terminal state (REVOKED counts)."""
        return time.time() if self.pending[job_id].ready() else None

    def wait_result(self, job_id, timeout=60):
        try:
            self.pending[job_id].get(timeout=timeout, propagate=False)
        except Exception:
            pass
        state = self.pending[job_id].state
        return (time.time(), state.lower())


def bare_spawn(work, n):
    out = os.path.join(work, "bare")
    os.makedirs(out, exist_ok=True)
    lat, t_all = [], time.time()
    for i in range(n):
        save = os.path.join(out, "b%d.mp4" % i)
        t0 = time.time()
        subprocess.run([PY, STANDIN, "--task", "t2v-A14B", "--ckpt_dir", "/tmp", "--save_file", save, "--size", "832*480",
                        "--prompt", "[[noop]]"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lat.append((json.load(open(save + ".argv.json"))["start"] - t0) * 1000)
    return lat, n / (time.time() - t_all)


def measure(system, work, rnd):
    r = {}
    tag = "%s-r%d" % (system.name, rnd)
    system.start()
    # Idle cost: nothing queued.
    time.sleep(2)
    pids = system.pids()
    c0, _ = cpu_and_rss(pids)
    time.sleep(IDLE_S)
    c1, rss = cpu_and_rss(pids)
    r["idle_cpu_pct"] = 100.0 * (c1 - c0) / IDLE_S
    r["idle_rss_mib"] = rss
    r["processes"] = len(pids)
    # Dispatch: publish -> the generator process has started.
    lat = []
    for i in range(N_DISPATCH):
        job = "%s-d%d" % (tag, i)
        t0 = time.time()
        system.submit(job, "[[noop]]")
        info = start_time(system.out, job)
        if info:
            lat.append((info["start"] - t0) * 1000)
        system.wait_result(job)
    r["dispatch_ms"] = lat
    # Cancel: published -> SIGTERM seen by the generator; -> the client holds the terminal result.
    to_sigterm, to_result, missed = [], [], 0
    for i in range(N_CANCEL):
        job = "%s-c%d" % (tag, i)
        system.submit(job, "[[record_sigterm]] [[step_s=0.5]]", steps=40)
        start_time(system.out, job)
        time.sleep(0.3)
        t0 = time.time()
        system.cancel(job)
        # Watch both at once: the generator's SIGTERM record and the client's terminal result.
        sig_path, sig, t_result = benchkit.run_file(system.out, job, ".sigterm"), None, None
        while time.time() - t0 < 5 and (sig is None or t_result is None):
            if sig is None and os.path.exists(sig_path):
                sig = open(sig_path).read() or None
            if t_result is None:
                t_result = system.poll_result(job)
            time.sleep(0.0002)
        if sig:
            to_sigterm.append((float(sig) - t0) * 1000)
        else:
            missed += 1
        if t_result is None:
            t_result, _ = system.wait_result(job, timeout=30)
        if t_result:
            to_result.append((t_result - t0) * 1000)
        # Let a generator that never got the signal finish before the next measurement.
        info = start_time(system.out, job, 0.1)
        if info:
            for _ in range(400):
                if not alive(info["pid"]):
                    break
                time.sleep(0.05)
    r["cancel_to_sigterm_ms"], r["cancel_to_result_ms"], r["sigterm_missed"] = to_sigterm, to_result, missed
    # Throughput of trivial jobs, one worker.
    t0 = time.time()
    jobs = ["%s-t%d" % (tag, i) for i in range(N_THROUGHPUT)]
    for job in jobs:
        system.submit(job, "[[noop]]")
    for job in jobs:
        system.wait_result(job)
    r["throughput_per_s"] = N_THROUGHPUT / (time.time() - t0)
    # What is left 3 s after a cancel, with a grandchild in its own session.
    job = "%s-left" % tag
    system.submit(job, "[[grandchild]] [[step_s=0.5]]", steps=40)
    info = start_time(system.out, job)
    grandchild = int(wait_for(os.path.join(system.out, job + ".mp4.grandchild"), 10) or 0)
    system.cancel(job)
    system.wait_result(job, timeout=10)
    time.sleep(3)
    left = [p for p in [info["pid"] if info else 0, grandchild] if p and alive(p)]
    r["left_after_cancel"] = len(left)
    for p in left:
        os.kill(p, signal.SIGKILL)
    # A queued job cancelled while no worker runs, then a fresh worker starts.
    system.stop()
    job = "%s-q" % tag
    system.submit(job, "[[noop]]")
    system.cancel(job)
    time.sleep(0.5)
    system.start()
    ran = start_time(system.out, job, timeout=8) is not None
    r["queued_cancel_ran"] = ran
    system.wait_result(job, timeout=10)
    system.stop()
    return r


def main():
    work = tempfile.mkdtemp(prefix="genworker-bench-")
    systems = [Genworker(work), CeleryWorker(work)]
    results = {s.name: [] for s in systems}
    bare = []
    for rnd in range(ROUNDS):
        lat, rate = bare_spawn(work, N_DISPATCH)
        bare.append({"spawn_ms": lat, "throughput_per_s": rate})
        for system in systems:
            print("round %d: %s" % (rnd + 1, system.name), file=sys.stderr, flush=True)
            results[system.name].append(measure(system, work, rnd))
    json.dump({"bare": bare, "results": results}, open(os.path.join(work, "results.json"), "w"))

    def agg(name, key):
        return [x for r in results[name] for x in r[key]]

    bare_lat = [x for b in bare for x in b["spawn_ms"]]
    bare_rate = statistics.mean(b["throughput_per_s"] for b in bare)
    print("| measure | genworker | Celery 5.7 | ratio (Celery / genworker) |")
    print("|---|---|---|---|")
    for label, key in [("publish → generator started, p50 / p99 (ms)", "dispatch_ms"),
                       ("cancel → SIGTERM in the generator, p50 / p99 (ms)", "cancel_to_sigterm_ms"),
                       ("cancel → client holds the terminal result, p50 / p99 (ms)", "cancel_to_result_ms")]:
        g, c = agg("genworker", key), agg("celery", key)
        def cell(xs):
            return "%.2f / %.2f (n=%d)" % (pct(xs, 0.5), pct(xs, 0.99), len(xs)) if xs else "never (n=0)"
        ratio = "%.1f× / %.1f×" % (pct(c, 0.5) / pct(g, 0.5), pct(c, 0.99) / pct(g, 0.99)) if g and c else "—"
        print("| %s | %s | %s | %s |" % (label, cell(g), cell(c), ratio))
    g, c = agg("genworker", "dispatch_ms"), agg("celery", "dispatch_ms")
    print("| dispatch overhead over a bare spawn (p50 %.2f ms), p50 (ms) | %.2f | %.2f | |"
          % (pct(bare_lat, 0.5), pct(g, 0.5) - pct(bare_lat, 0.5), pct(c, 0.5) - pct(bare_lat, 0.5)))
    for label, key, fmt in [("trivial-job throughput (jobs/s; bare spawns %.1f/s)" % bare_rate, "throughput_per_s", "%.1f"),
                            ("idle CPU (% of a core)", "idle_cpu_pct", "%.3f"),
                            ("idle resident memory, all processes (MiB)", "idle_rss_mib", "%.1f"),
                            ("generator processes alive 3 s after a cancel (of 2)", "left_after_cancel", "%d"),
                            ("cancels whose generator never saw SIGTERM", "sigterm_missed", "%d"),
                            ("queued job cancelled while no worker ran: it ran", "queued_cancel_ran", "%s")]:
        cells = []
        for name in ("genworker", "celery"):
            cells.append(", ".join(fmt % r[key] for r in results[name]))
        print("| %s | %s | %s | |" % (label, cells[0], cells[1]))
    print("\nraw results: %s" % os.path.join(work, "results.json"), file=sys.stderr)


if __name__ == "__main__":
    main()
