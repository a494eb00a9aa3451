#!/usr/bin/env python3
"""The ledger's benchmarks (not a test; minutes). scripts/bench-fleet.sh runs them all:

  restart   GPU-seconds lost when a RabbitMQ node restarts with N long jobs in flight, on the
            three-node cluster: the previous genworker (BENCH_OLD_GENWORKER, built from git),
            this genworker, and Celery 5.7 (acks_late, prefetch 1), one after the other.
  cost      what the ledger adds per job: publish -> generator start, and generator end ->
            result in the results queue, old vs new, one worker on the private broker.
  cancel    cancel -> SIGTERM in the generator, p50 / p99, with 8 and with 64 workers
            following the ledger (each running a job).
  ready     time from `genworker run` to consuming, with 100,000 records in the ledger window;
            and `genworker status` on it.

    python3 bench/fleet_bench.py restart|cost|cancel|ready ...
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import connect, run_file, topology_yaml  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
NEW = os.path.join(ROOT, ".build", "dist", "genworker")
OLD = os.environ.get("BENCH_OLD_GENWORKER", "")
BROKER_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5679/")
STANDIN = os.path.join(ROOT, "examples", "standin")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def cluster_urls():
    return subprocess.run([os.path.join(ROOT, "scripts", "cluster.sh"), "urls"], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip().split(",")


def write_config(work, name, prefix, urls, lease=None, extra=""):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write("amqp:\n  urls: [%s]\n  reconnect_max_s: 1\nworker:\n  name: %s\n  lock_dir: %s\n" % (", ".join(urls), name, work))
        # The worker before the ledger (b2b4f31) does not know topology.ledger_stream.
        f.write(topology_yaml(prefix, without=() if lease else ("ledger_stream",)))
        f.write("wan:\n  python: %s\n  repo: %s\n  checkpoints: /tmp\noutputs:\n  dir: %s\n"
                % (PY, STANDIN, os.path.join(work, "out")))
        f.write("supervisor:\n  grace_s: 2\nmetrics:\n  enabled: false\nenv:\n  set:\n    GENWORKER_STANDIN_LEDGER: %s\n"
                % os.path.join(work, "standin-ledger.txt"))
        if lease:
            f.write("jobs:\n  lease_s: %d\n" % lease)
        f.write(extra)
    return path


def job_body(job, prompt, steps):
    return json.dumps({"id": job, "task": "t2v-A14B", "params": {"prompt": prompt, "size": "832*480", "sample_steps": steps}}).encode()


class Monitor(threading.Thread):
    """Samples /proc every 20 ms for stand-in processes writing into `out`: pid -> [job, first, last]."""

    def __init__(self, out):
        super().__init__(daemon=True)
        self.out, self.seen, self.running = out.encode(), {}, True

    def run(self):
        while self.running:
            now = time.time()
            for p in os.listdir("/proc"):
                if not p.isdigit():
                    continue
                pid = int(p)
                if pid in self.seen:
                    if os.path.exists("/proc/%d" % pid):
                        self.seen[pid][2] = now
                    continue
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        cmd = f.read().split(b"\0")
                except OSError:
                    continue
                if b"--save_file" not in cmd or not any(a.endswith(b"generate.py") for a in cmd):
                    continue
                # A fork of a run (the stand-in starting ffmpeg) has the run's command line until it execs: not a run.
                try:
                    with open("/proc/%d/stat" % pid) as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) in self.seen:
                            continue
                except (OSError, ValueError, IndexError):
                    continue
                save = cmd[cmd.index(b"--save_file") + 1]
                if not save.startswith(self.out):
                    continue
                self.seen[pid] = [os.path.basename(save.decode()).rsplit(".mp4", 1)[0], now, now]
            time.sleep(0.02)


def gpu_seconds_lost(monitor, ids):
    """All generator-seconds minus, per job, its longest run (the one that did the work)."""
    total = sum(last - first for _, first, last in monitor.seen.values())
    useful = 0.0
    for job in ids:
        runs = [last - first for j, first, last in monitor.seen.values() if j == job]
        useful += max(runs) if runs else 0.0
    starts = {job: sum(1 for j, _, _ in monitor.seen.values() if j == job) for job in ids}
    return total - useful, starts


# --- restart ---------------------------------------------------------------------------------

def restart_once(system, n_jobs, job_s):
    urls = cluster_urls()
    work = tempfile.mkdtemp(prefix="fleet-restart-%s-" % system)
    out = os.path.join(work, "out")
    os.makedirs(out)
    prefix = "fr-%s-%s" % (system, uuid.uuid4().hex[:6])
    procs = []
    logs = open(os.path.join(work, "workers.log"), "a")
    env = dict(os.environ)
    if system == "celery":
        env.update({"BENCH_CELERY_BROKER": ";".join(urls), "BENCH_CELERY_QUEUE": prefix + ".celery", "BENCH_CELERY_QUEUE_TYPE": "quorum"})
        for i in range(n_jobs):
            procs.append(subprocess.Popen([PY, "-m", "celery", "-A", "celery_app", "worker", "-c", "1", "-P", "prefork",
                                           "-n", "w%d@%s" % (i, prefix), "--without-gossip", "--without-mingle",
                                           "--without-heartbeat", "-l", "warning"], cwd=os.path.join(ROOT, "bench"),
                                          env=env, stdout=logs, stderr=subprocess.STDOUT))
        time.sleep(6)
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        os.environ.update({"BENCH_CELERY_BROKER": ";".join(urls), "BENCH_CELERY_QUEUE": prefix + ".celery", "BENCH_CELERY_QUEUE_TYPE": "quorum"})
        import celery_app
        celery_app.app.conf.broker_url = ";".join(urls)
        celery_app.app.conf.task_default_queue = prefix + ".celery"
        results = [celery_app.generate.apply_async(("fr%d" % i, "x [[step_s=0.1]]", out, int(job_s * 10)),
                                                   queue=prefix + ".celery") for i in range(n_jobs)]
    else:
        binary = OLD if system == "old" else NEW
        for i in range(n_jobs):
            config = write_config(work, "%s-%d" % (prefix, i), prefix, urls, lease=(30 if system == "new" else None))
            procs.append(subprocess.Popen([binary, "run", "--config", config], stdout=logs, stderr=subprocess.STDOUT))
        time.sleep(4)
        conn, ch = connect(urls)
        for i in range(n_jobs):
            ch.basic_publish(prefix + ".jobs", "t2v-A14B", job_body("fr%d" % i, "x [[step_s=0.1]]", int(job_s * 10)),
                             pika.BasicProperties(content_type="application/json", delivery_mode=2))
        conn.close()
    monitor = Monitor(out)
    monitor.start()
    ids = ["fr%d" % i for i in range(n_jobs)]
    deadline = time.time() + 60
    while len({j for j, _, _ in monitor.seen.values()}) < n_jobs and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(job_s / 4)
    t_restart = time.time()
    subprocess.run([os.path.join(ROOT, "scripts", "cluster.sh"), "restart-node", "1"], check=True, stdout=subprocess.DEVNULL)
    restart_s = time.time() - t_restart
    # Wait until every job has a finished run (the stand-in writes its output file last).
    deadline = time.time() + job_s * 6 + 120
    while time.time() < deadline and not all(os.path.exists(os.path.join(out, j + ".mp4")) for j in ids):
        time.sleep(0.2)
    # Keep watching for a job-length more: a system that requeued a job on the restart runs it again now.
    time.sleep(job_s + 15)
    monitor.running = False
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    if system == "celery":
        subprocess.run(["pkill", "-f", "w[0-9]+@" + prefix])
    lost, starts = gpu_seconds_lost(monitor, ids)
    return {"system": system, "jobs": n_jobs, "job_s": job_s, "restart_s": round(restart_s, 1),
            "gpu_seconds_lost": round(lost, 1), "generator_starts": sum(starts.values()),
            "finished": sum(os.path.exists(os.path.join(out, j + ".mp4")) for j in ids), "work": work}


# --- cost ------------------------------------------------------------------------------------

def cost(binary, label, n=40):
    work = tempfile.mkdtemp(prefix="fleet-cost-%s-" % label)
    out = os.path.join(work, "out")
    os.makedirs(out)
    prefix = "fc-%s-%s" % (label, uuid.uuid4().hex[:6])
    config = write_config(work, prefix + "-w", prefix, [BROKER_URL], lease=(120 if label == "new" else None))
    worker = subprocess.Popen([binary, "run", "--config", config], stdout=open(os.path.join(work, "w.log"), "w"), stderr=subprocess.STDOUT)
    time.sleep(3)
    conn, ch = connect([BROKER_URL])
    ledger = os.path.join(work, "standin-ledger.txt")
    dispatch, result = [], []
    for i in range(n):
        job = "fc%03d-%s" % (i, prefix[-6:])  # unique per run: the ledger stream outlives a run
        t0 = time.time()
        ch.basic_publish(prefix + ".jobs", "t2v-A14B", job_body(job, "x [[step_s=0.005]]", 3),
                         pika.BasicProperties(content_type="application/json", delivery_mode=2))
        while True:
            method, _, body = ch.basic_get(prefix + ".results", auto_ack=True)
            if method:
                t_result = time.time()
                break
            time.sleep(0.0005)
        times = {}
        for line in open(ledger):
            kind, j, _, t = line.split()
            if j == job:
                times[kind] = float(t)
        # The stand-in's start line comes after Python's start-up; its end line just before it exits.
        dispatch.append((times["start"] - t0) * 1000)
        result.append((t_result - times["end"]) * 1000)
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    return {"system": label, "jobs": n, "publish_to_start_ms_p50": round(pct(dispatch, 0.5), 1),
            "publish_to_start_ms_p90": round(pct(dispatch, 0.9), 1), "end_to_result_ms_p50": round(pct(result, 0.5), 1),
            "end_to_result_ms_p90": round(pct(result, 0.9), 1)}


# --- cancel ----------------------------------------------------------------------------------

def cancel(k):
    work = tempfile.mkdtemp(prefix="fleet-cancel-%d-" % k)
    out = os.path.join(work, "out")
    os.makedirs(out)
    prefix = "fx%d-%s" % (k, uuid.uuid4().hex[:6])
    procs = []
    for i in range(k):
        config = write_config(work, "%s-%d" % (prefix, i), prefix, [BROKER_URL], lease=120)
        procs.append(subprocess.Popen([NEW, "run", "--config", config], stdout=open(os.path.join(work, "w%d.log" % i), "w"),
                                      stderr=subprocess.STDOUT))
    time.sleep(5 + k / 8)
    conn, ch = connect([BROKER_URL])
    ids = ["fx%03d" % i for i in range(k)]
    for job in ids:
        ch.basic_publish(prefix + ".jobs", "t2v-A14B", job_body(job, "x [[record_sigterm]] [[step_s=0.5]]", 1000),
                         pika.BasicProperties(content_type="application/json", delivery_mode=2))
    deadline = time.time() + 120
    while time.time() < deadline and not all(os.path.exists(run_file(out, j, ".argv.json")) for j in ids):
        time.sleep(0.2)
    time.sleep(2)
    latencies, missed = [], 0
    for job in ids:
        t0 = time.time()
        ch.basic_publish(prefix + ".cancel", "", json.dumps({"id": job}).encode(),
                         pika.BasicProperties(content_type="application/json", delivery_mode=2))
        path = run_file(out, job, ".sigterm")
        end = time.time() + 10
        while time.time() < end and not (os.path.exists(path) and open(path).read()):
            time.sleep(0.0005)
        if os.path.exists(path) and open(path).read():
            latencies.append((float(open(path).read()) - t0) * 1000)
        else:
            missed += 1
        time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(60)
    return {"workers": k, "cancels": len(ids), "cancel_to_sigterm_ms_p50": round(pct(latencies, 0.5), 1),
            "cancel_to_sigterm_ms_p99": round(pct(latencies, 0.99), 1), "missed": missed}


# --- ready -----------------------------------------------------------------------------------

def ready(records=100_000):
    work = tempfile.mkdtemp(prefix="fleet-ready-")
    os.makedirs(os.path.join(work, "out"))
    prefix = "fy-%s" % uuid.uuid4().hex[:6]
    config = write_config(work, prefix + "-w", prefix, [BROKER_URL], lease=120)
    # Declare the topology (the ledger stream and its bindings) with the worker's own command.
    subprocess.run([NEW, "declare", "--config", config], check=True, stdout=subprocess.DEVNULL)
    conn, ch = connect([BROKER_URL])
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.time()
    n = 0
    # A realistic mix: per job a submission, a claim, an end; and heartbeats.
    while n < records:
        i = n // 4
        job = "fy%06d" % i
        ch.basic_publish(prefix + ".jobs", "t2v-A14B", job_body(job, "a prompt of ordinary length for a video", 40))
        claim = {"ledger": 1, "kind": "claim", "worker": "bench-%d" % (i % 8), "at": now, "ref": uuid.uuid4().hex, "id": job,
                 "task": "t2v-A14B", "job": job_body(job, "a prompt of ordinary length for a video", 40).decode()}
        end = {"ledger": 1, "kind": "end", "worker": "bench-%d" % (i % 8), "at": now, "ref": uuid.uuid4().hex, "id": job,
               "attempt": 1, "result": {"version": 1, "id": job, "task": "t2v-A14B", "event": "completed", "status": "completed",
                                        "worker": "bench-%d" % (i % 8), "output": "/out/%s.mp4" % job, "elapsed_s": 400.0}}
        beat = {"ledger": 1, "kind": "heartbeat", "worker": "bench-%d" % (i % 8), "at": now, "ref": uuid.uuid4().hex,
                "counter": i, "runs": [], "slots": 1, "node": "n", "version": "x"}
        for record in (claim, end, beat):
            # As a worker writes them: with its user_id, which the broker checks (topology.ledger_writers).
            ch.basic_publish("", prefix + ".ledger", json.dumps(record).encode(), pika.BasicProperties(user_id="guest"))
        n += 4
    conn.close()
    fill_s = time.time() - t0
    log = os.path.join(work, "w.log")
    t_start = time.time()
    worker = subprocess.Popen([NEW, "run", "--config", config], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    text = ""
    while "consuming" not in text and time.time() - t_start < 300:
        time.sleep(0.02)
        text = open(log).read()
    ready_s = time.time() - t_start
    status_lines = open("/proc/%d/status" % worker.pid).read().splitlines()
    kib = {l.split(":")[0]: int(l.split()[1]) for l in status_lines if l.startswith(("VmRSS:", "RssAnon:", "RssFile:"))}
    rss_kib = kib["VmRSS"]
    caught = next((l for l in text.splitlines() if "ledger caught up" in l), "")
    t1 = time.time()
    status = subprocess.run([NEW, "status", "--config", config, "fy000123"], stdout=subprocess.PIPE, text=True)
    status_s = time.time() - t1
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    return {"records": records, "fill_s": round(fill_s, 1), "run_to_consuming_s": round(ready_s, 2),
            "worker_log": caught.split("] ", 1)[-1], "worker_rss_mib_after_catch_up": round(rss_kib / 1024, 1),
            # heap and stacks apart from the binary's pages (code the catch-up touched)
            "worker_rss_anon_mib": round(kib["RssAnon"] / 1024, 1), "worker_rss_file_mib": round(kib["RssFile"] / 1024, 1),
            "status_cli_s": round(status_s, 2), "status_ok": status.returncode == 0 and '"state":"ended"' in status.stdout}


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "restart":
        n, job_s = int(sys.argv[2]) if len(sys.argv) > 2 else 3, float(sys.argv[3]) if len(sys.argv) > 3 else 30
        systems = [s for s in ["old", "new", "celery"] if s != "old" or OLD]
        print(json.dumps([restart_once(s, n, job_s) for s in systems], indent=1))
    elif what == "cost":
        print(json.dumps(([cost(OLD, "old")] if OLD else []) + [cost(NEW, "new")], indent=1))
    elif what == "cancel":
        print(json.dumps([cancel(int(k)) for k in (sys.argv[2:] or ["8", "64"])], indent=1))
    elif what == "ready":
        print(json.dumps(ready(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000), indent=1))
