#!/usr/bin/env python3
"""Idle resident memory of `genworker run` and of its genworker-watchdog child, with the
metrics endpoint off and on (Hummingbird serving), 10 s after the worker says it consumes.

    python3 bench/idle_memory.py [BINARY] [AMQP_URL]

BINARY defaults to .build/dist/genworker (scripts/build-release.sh; the watchdog must be
beside it), AMQP_URL to the private broker (scripts/broker.sh)."""
import glob
import os
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchkit import topology_yaml  # noqa: E402

binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "dist", "genworker")
url = sys.argv[2] if len(sys.argv) > 2 else "amqp://guest:guest@127.0.0.1:5679/"
out = {}
for metrics in (False, True):
    work = tempfile.mkdtemp(prefix="idle-")
    os.makedirs(work + "/out")
    prefix = "idle-" + uuid.uuid4().hex[:6]
    cfg = work + "/w.yaml"
    with open(cfg, "w") as f:
        f.write("amqp:\n  url: %s\nworker:\n  name: %s\n  lock_dir: %s\n" % (url, prefix, work))
        f.write(topology_yaml(prefix))
        f.write("wan:\n  python: python3\n  repo: %s/examples/standin\n  checkpoints: /tmp\noutputs:\n  dir: %s/out\n" % (ROOT, work))
        f.write("metrics:\n  enabled: %s\n  port: 0\n" % ("true" if metrics else "false"))
    log = open(work + "/w.log", "w")
    p = subprocess.Popen([binary, "run", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    t = time.time()
    while "consuming" not in open(work + "/w.log").read() and time.time() - t < 60:
        time.sleep(0.05)
    time.sleep(10)
    def rss(pid):
        return int(next(l.split()[1] for l in open("/proc/%d/status" % pid) if l.startswith("VmRSS:"))) / 1024
    w = rss(p.pid)
    kids = []
    for f in glob.glob("/proc/%d/task/*/children" % p.pid):
        kids += open(f).read().split()
    dogs = [rss(int(k)) for k in kids if open("/proc/%s/comm" % k).read().startswith("genworker-watch")]
    out["metrics on" if metrics else "metrics off"] = {"worker_mib": round(w, 1), "watchdog_mib": [round(d, 1) for d in dogs]}
    p.terminate(); p.wait(30)
print(out)
