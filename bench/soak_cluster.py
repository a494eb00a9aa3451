#!/usr/bin/env python3
"""Cluster soak (not a test; minutes): four genworker processes on the three-node cluster of
scripts/cluster.sh, JOBS stand-in jobs (most short, 10 % of 2-5 s so node restarts hit
running jobs), 10 % cancelled at random moments. During the run every node is restarted in
turn (a rolling restart), one worker is SIGKILLed (and restarted), one is SIGSTOPped past its
lease and then SIGCONTed. A monitor samples /proc every 50 ms for the stand-in's processes.

Verdict: 0 missing results, 0 doubled, 0 moments with two runs of one job alive, 0 runs
killed by a node restart, 0 generators left; and the GPU-seconds lost (stand-in seconds of
runs that did not finish, other than cancels).

    scripts/soak.sh --cluster [JOBS]
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Publisher, Results, topology_yaml  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
GENWORKER = os.path.join(ROOT, ".build", "dist", "genworker")
CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
URLS = subprocess.run([CLUSTER, "urls"], stdout=subprocess.PIPE, text=True, check=True).stdout.strip().split(",")
JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
LEASE_S = 10
DEADLINE_S = 2400
rng = random.Random(2026)
work = tempfile.mkdtemp(prefix="genworker-soak-cluster-")
prefix = "csoak-" + uuid.uuid4().hex[:6]
ledger = os.path.join(work, "standin-ledger.txt")


def config(name, port):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write("amqp:\n  urls: [%s]\n  reconnect_max_s: 2\nworker:\n  name: %s\n  lock_dir: %s\n" % (", ".join(URLS), name, work))
        f.write(topology_yaml(prefix))
        f.write("wan:\n  python: %s\n  repo: %s\n  checkpoints: /tmp\noutputs:\n  dir: %s\n"
                % (PY, os.path.join(ROOT, "examples", "standin"), os.path.join(work, "out")))
        f.write("supervisor:\n  grace_s: 2\njobs:\n  lease_s: %d\nshutdown:\n  mode: drain\n  drain_timeout_s: 20\n" % LEASE_S)
        f.write("metrics:\n  enabled: false\nenv:\n  set:\n    GENWORKER_STANDIN_LEDGER: %s\n" % ledger)
    return path


class Worker:
    def __init__(self, name):
        self.name, self.config, self.proc = name, config(name, 0), None
        self.log = open(os.path.join(work, name + ".log"), "a")

    def start(self):
        self.proc = subprocess.Popen([GENWORKER, "run", "--config", self.config], stdout=self.log, stderr=subprocess.STDOUT)


# The monitor: which stand-in processes of which job are alive, every 50 ms.
alive_seen = {}  # pid -> [job, owner, first_seen, last_seen]
overlap_moments = []
monitoring = True


def parent(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def monitor():
    marker = b"GENWORKER_OWNER=csoak-"
    while monitoring:
        now = time.time()
        by_job = {}
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            pid = int(p)
            info = alive_seen.get(pid)
            if info is None:
                try:
                    with open("/proc/%d/environ" % pid, "rb") as f:
                        env = f.read()
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        cmd = f.read().split(b"\0")
                except OSError:
                    continue
                if marker not in env or not any(a.endswith(b"generate.py") for a in cmd):
                    continue
                # A fork of a run (the stand-in starting ffmpeg) has the run's command line until it execs: not a run.
                if parent(pid) in alive_seen:
                    continue
                owner = next(v for v in env.split(b"\0") if v.startswith(b"GENWORKER_OWNER=")).decode().split("=", 1)[1]
                save = cmd[cmd.index(b"--save_file") + 1].decode() if b"--save_file" in cmd else ""
                job = os.path.basename(save).rsplit(".mp4", 1)[0]
                info = alive_seen[pid] = [job, owner.split("@")[0], now, now]
            elif not os.path.exists("/proc/%d" % pid):
                continue
            info[3] = now
            by_job.setdefault(info[0], []).append(pid)
        for job, pids in by_job.items():
            if len(pids) > 1:
                overlap_moments.append((now, job, pids))
        time.sleep(0.05)


def cluster(*args):
    subprocess.run([CLUSTER] + list(args), check=True, stdout=subprocess.DEVNULL)


workers = [Worker("csoak-%d" % i) for i in range(1, 5)]
for w in workers:
    w.start()
time.sleep(3)
threading.Thread(target=monitor, daemon=True).start()
publish = Publisher(URLS).publish
ids, long_jobs = [], set()
for i in range(JOBS):
    job = "c%05d" % i
    if rng.random() < 0.10:
        steps, step_s = rng.randint(20, 50), 0.1
        long_jobs.add(job)
    else:
        steps, step_s = rng.randint(3, 10), rng.choice([0.005, 0.01, 0.02])
    ids.append(job)
    publish(prefix + ".jobs", "t2v-A14B", json.dumps({"id": job, "task": "t2v-A14B", "params": {
        "prompt": "soak %s [[step_s=%s]]" % (job, step_s), "size": "832*480", "sample_steps": steps}}).encode())
cancelled = set(rng.sample(ids, JOBS // 10))
print("published %d jobs (%d long, %d to cancel) in %s" % (JOBS, len(long_jobs), len(cancelled), work), file=sys.stderr, flush=True)

pending_cancels = sorted((rng.uniform(0, 1), job) for job in cancelled)
start = time.time()
events = {0.15: "restart-1", 0.30: "restart-2", 0.45: "restart-3", 0.60: "kill-1", 0.75: "stop-2"}
killed_worker, stopped_worker = workers[0].name, workers[1].name
collector = Results(URLS, prefix + ".results")
results = collector.by_id
drain_results = collector.drain


actions = []
while len(results) < JOBS and time.time() - start < DEADLINE_S:
    done = len(results) / JOBS
    while pending_cancels and pending_cancels[0][0] <= done + 0.02:
        _, job = pending_cancels.pop(0)
        publish(prefix + ".cancel", "", json.dumps({"id": job}).encode())
    for mark in sorted(events):
        if done >= mark:
            action = events.pop(mark)
            t = time.time()
            print("%.0f%% done: %s" % (done * 100, action), file=sys.stderr, flush=True)
            if action.startswith("restart-"):
                cluster("restart-node", action.split("-")[1])
            elif action == "kill-1":
                workers[0].proc.send_signal(signal.SIGKILL)
                workers[0].proc.wait()
                workers[0].start()
            elif action == "stop-2":
                workers[1].proc.send_signal(signal.SIGSTOP)
                time.sleep(LEASE_S + 5)
                workers[1].proc.send_signal(signal.SIGCONT)
            actions.append((action, t, time.time()))
            break
    drain_results()
    time.sleep(0.2)
drain_results()
for _, job in pending_cancels:
    publish(prefix + ".cancel", "", json.dumps({"id": job}).encode())
for w in workers:
    w.proc.send_signal(signal.SIGTERM)
    w.proc.wait(120)
time.sleep(1)
drain_results()
monitoring = False
time.sleep(0.2)

missing = [j for j in ids if j not in results]
doubled = {j: r for j, r in results.items() if len(r) > 1}
left = [p for p, info in alive_seen.items() if os.path.exists("/proc/%d" % p)]
ended = set()
for line in open(ledger):
    kind, job, pid, _ = line.split()
    if kind == "end":
        ended.add(int(pid))
status_of = {j: r[0].split("/")[0] for j, r in results.items()}
unfinished = [(pid, info) for pid, info in alive_seen.items() if pid not in ended and status_of.get(info[0]) != "cancelled"]
restart_windows = [(t0, t1 + 5) for a, t0, t1 in actions if a.startswith("restart-")]
by_restart = [u for u in unfinished if u[1][1] not in (killed_worker, stopped_worker) and any(t0 <= u[1][3] <= t1 for t0, t1 in restart_windows)]
lost_s = sum(info[3] - info[2] for _, info in unfinished)
statuses = {}
for s in status_of.values():
    statuses[s] = statuses.get(s, 0) + 1
report = {
    "jobs": JOBS, "results": sum(len(r) for r in results.values()), "ids_with_result": len(results),
    "missing_count": len(missing), "missing": missing[:20], "doubled_count": len(doubled), "doubled": dict(list(doubled.items())[:20]),
    "by_status": statuses, "runs_seen": len(alive_seen), "jobs_run_more_than_once": sum(
        1 for j in ids if sum(1 for info in alive_seen.values() if info[0] == j) > 1),
    "overlapping_moments": len(overlap_moments), "overlaps": overlap_moments[:5],
    "unfinished_runs_not_cancelled": [(info[0], info[1], round(info[3] - info[2], 2)) for _, info in unfinished][:20],
    "runs_killed_by_a_node_restart": len(by_restart), "gpu_seconds_lost": round(lost_s, 2),
    "generators_left": len(left), "actions": [(a, round(t0 - start, 1), round(t1 - t0, 1)) for a, t0, t1 in actions],
    "seconds": round(time.time() - start), "work": work}
print(json.dumps(report, indent=1))
ok = not missing and not doubled and not left and not overlap_moments and not by_restart
sys.exit(0 if ok else 1)
