#!/usr/bin/env python3
"""Chaos soak (bounded in time, loopback only): two genworker processes on one private broker,
JOBS stand-in jobs of random lengths, ~20 % cancelled at random moments (queued and running),
5 % failing, 1 % ignoring SIGTERM. During the run one worker is SIGKILLed and restarted, the
other is stopped gracefully (SIGTERM, drain) and restarted, and the broker is restarted once.
At the end: every job id must have exactly one terminal result in the results queue, no
generator may be alive, no job may have run twice at the same time, and each worker's memory
must stay under a bound.

    scripts/soak.sh [JOBS]
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Publisher, Results, topology_yaml  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
GENWORKER = os.path.join(ROOT, ".build", "dist", "genworker")
URL = os.environ.get("SOAK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5679/")
JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
RSS_BOUND_MIB = 64
DEADLINE_S = 1800
rng = random.Random(2026)
work = tempfile.mkdtemp(prefix="genworker-soak-")
prefix = "soak-" + uuid.uuid4().hex[:6]
ledger = os.path.join(work, "ledger.txt")


def config(name):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write("amqp:\n  url: %s\n  reconnect_max_s: 2\nworker:\n  name: %s\n" % (URL, name))
        f.write(topology_yaml(prefix))
        f.write("wan:\n  python: %s\n  repo: %s\n  checkpoints: /tmp\noutputs:\n  dir: %s\n"
                % (PY, os.path.join(ROOT, "examples", "standin"), os.path.join(work, "out")))
        f.write("supervisor:\n  grace_s: 2\njobs:\n  lease_s: 10\nshutdown:\n  mode: drain\n  drain_timeout_s: 20\nmetrics:\n  enabled: false\n")
        f.write("env:\n  set:\n    GENWORKER_STANDIN_LEDGER: %s\n" % ledger)
    return path


class Worker:
    def __init__(self, name):
        self.name, self.config, self.proc, self.max_rss = name, config(name), None, 0.0
        self.log = open(os.path.join(work, name + ".log"), "a")

    def start(self):
        self.proc = subprocess.Popen([GENWORKER, "run", "--config", self.config], stdout=self.log, stderr=subprocess.STDOUT)

    def rss(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            self.max_rss = max(self.max_rss, kib / 1024.0)
        except (OSError, StopIteration):
            pass


def broker(command):
    subprocess.run([os.path.join(ROOT, "scripts", "broker.sh"), command], check=True, stdout=subprocess.DEVNULL)


workers = [Worker("soak-a"), Worker("soak-b")]
for w in workers:
    w.start()
time.sleep(2)
publisher = Publisher([URL])
publish = publisher.publish
kinds = {}
ids = []
for i in range(JOBS):
    job = "j%05d" % i
    roll = rng.random()
    steps = rng.randint(3, 15)
    step_s = rng.choice([0.005, 0.01, 0.02, 0.05])
    if roll < 0.05:
        prompt, kind = "[[exit=3]] [[step_s=%s]]" % step_s, "fail"
    elif roll < 0.06:
        prompt, kind = "[[ignore_sigterm]] [[step_s=0.2]]", "stubborn"
        steps = 30
    else:
        prompt, kind = "[[step_s=%s]]" % step_s, "ok"
    kinds[job] = kind
    ids.append(job)
    publish(prefix + ".jobs", "t2v-A14B", json.dumps({"id": job, "task": "t2v-A14B", "params": {
        "prompt": "soak %s %s" % (job, prompt), "size": "832*480", "sample_steps": steps}}).encode())
cancelled = set(rng.sample(ids, JOBS // 5))
print("published %d jobs (%d to cancel) in %s" % (JOBS, len(cancelled), work), file=sys.stderr, flush=True)

# Cancels at random moments while the jobs drain: some hit queued jobs, some running ones.
pending_cancels = sorted((rng.uniform(0, 1), job) for job in cancelled)
start = time.time()
events = {0.25: "kill-a", 0.5: "term-b", 0.75: "broker"}
collector = Results([URL], prefix + ".results")
results = collector.by_id
drain_results = collector.drain


while len(results) < JOBS and time.time() - start < DEADLINE_S:
    done = len(results) / JOBS
    while pending_cancels and pending_cancels[0][0] <= done + 0.02:
        _, job = pending_cancels.pop(0)
        publish(prefix + ".cancel", "", json.dumps({"id": job}).encode())
    for mark in sorted(events):
        if done >= mark:
            action = events.pop(mark)
            print("%.0f%% done: %s" % (done * 100, action), file=sys.stderr, flush=True)
            if action == "kill-a":
                workers[0].proc.send_signal(signal.SIGKILL)
                workers[0].proc.wait()
                workers[0].start()
            elif action == "term-b":
                workers[1].proc.send_signal(signal.SIGTERM)
                workers[1].proc.wait(60)
                workers[1].start()
            elif action == "broker":
                broker("restart")
            break
    for w in workers:
        w.rss()
    drain_results()
    time.sleep(0.2)
drain_results()
for _, job in pending_cancels:
    publish(prefix + ".cancel", "", json.dumps({"id": job}).encode())
for w in workers:
    w.proc.send_signal(signal.SIGTERM)
    w.proc.wait(60)
time.sleep(1)
drain_results()

missing = [j for j in ids if j not in results]
doubled = {j: r for j, r in results.items() if len(r) > 1}
marked = subprocess.run(["grep", "-l", "GENWORKER_OWNER=soak-", "-s"] + ["/proc/%s/environ" % p for p in os.listdir("/proc") if p.isdigit()],
                        stdout=subprocess.PIPE, text=True).stdout.split()
starts, ends, overlaps, unverifiable = {}, {}, 0, 0
for line in open(ledger):
    kind, job, pid, t = line.split()
    (starts if kind == "start" else ends).setdefault(job, []).append((float(t), int(pid)))
for job, runs in starts.items():
    runs.sort()
    end_by_pid = {pid: t for t, pid in ends.get(job, [])}
    for (t1, p1), (t2, _) in zip(runs, runs[1:]):
        if p1 in end_by_pid:
            overlaps += end_by_pid[p1] > t2
        else:
            unverifiable += 1  # the earlier run was killed (no end line); the worker kills before redelivery
statuses = {}
for r in results.values():
    statuses[r[0].split("/")[0]] = statuses.get(r[0].split("/")[0], 0) + 1
print(json.dumps({
    "jobs": JOBS, "results": sum(len(r) for r in results.values()), "ids_with_result": len(results),
    "missing": missing[:20], "missing_count": len(missing), "doubled": dict(list(doubled.items())[:20]),
    "doubled_count": len(doubled), "by_status": statuses, "cancels_sent": len(cancelled),
    "generators_alive_after": len(marked), "runs_started": sum(len(v) for v in starts.values()),
    "jobs_run_more_than_once": sum(1 for v in starts.values() if len(v) > 1), "overlapping_runs": overlaps,
    "reruns_after_a_killed_run": unverifiable,
    "max_rss_mib": {w.name: round(w.max_rss, 1) for w in workers}, "rss_bound_mib": RSS_BOUND_MIB,
    "seconds": round(time.time() - start), "work": work}, indent=1))
ok = not missing and not doubled and not marked and overlaps == 0 and all(w.max_rss < RSS_BOUND_MIB for w in workers)
sys.exit(0 if ok else 1)
