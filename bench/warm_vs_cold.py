"""Cold and warm side by side, one run (a benchmark, not a test): the stand-in generator with a
pipeline that takes BUILD_S to build and SAMPLE_S of sampling per job, N jobs on one slot.

Measures, per mode: videos per hour over N jobs, and the time from a cancel of a running job
to the next job's first sampling step (its first `progress` event with step >= 1).

    BENCH_AMQP_URL=... BENCH_GENWORKER=.build/dist/genworker python3 bench/warm_vs_cold.py [N] [BUILD_S] [SAMPLE_S]
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import pika

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENWORKER = os.environ.get("BENCH_GENWORKER", os.path.join(ROOT, ".build", "dist", "genworker"))
URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5679/")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
BUILD_S = float(sys.argv[2]) if len(sys.argv) > 2 else 30
SAMPLE_S = float(sys.argv[3]) if len(sys.argv) > 3 else 60
STEPS = 40


class Worker:
    def __init__(self, work, warm):
        self.prefix = "bench-warm-" + uuid.uuid4().hex[:6]
        self.out = os.path.join(work, "out")
        os.makedirs(self.out, exist_ok=True)
        self.config = os.path.join(work, "genworker.yaml")
        with open(self.config, "w") as f:
            f.write("amqp:\n  url: %s\nworker:\n  name: %s\n  lock_dir: %s\ntopology:\n" % (URL, self.prefix, work))
            for key in ["jobs_exchange", "jobs_queue", "cancel_exchange", "cancel_stream", "events_exchange", "results_queue",
                        "dead_exchange", "dead_queue", "unrouted_exchange", "unrouted_queue"]:
                f.write("  %s: %s.%s\n" % (key, self.prefix, key.split("_")[0] if key != "cancel_stream" else "cancel.log"))
            f.write("wan:\n  python: %s\n  repo: %s\n  checkpoints: /tmp\n  warm: %s\n" % (
                sys.executable, os.path.join(ROOT, "examples", "standin"), "true" if warm else "false"))
            f.write("outputs:\n  dir: %s\nmetrics:\n  enabled: false\nsupervisor:\n  grace_s: 10\n" % self.out)
            f.write("progress:\n  interval_ms: 0\nenv:\n  set:\n    GENWORKER_STANDIN_BUILD_S: '%s'\n" % BUILD_S)
        self.proc = subprocess.Popen([GENWORKER, "run", "--config", self.config], stdout=open(os.path.join(work, "log"), "w"),
                                     stderr=subprocess.STDOUT)
        self.conn = pika.BlockingConnection(pika.URLParameters(URL + "%2f?heartbeat=0"))
        self.ch = self.conn.channel()
        for _ in range(200):
            if "consuming" in open(os.path.join(work, "log")).read():
                break
            time.sleep(0.05)
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.queue, self.prefix + ".events", "#")
        self.events = []
        self.ch.basic_consume(self.queue, lambda c, m, p, body: self.events.append((time.time(), json.loads(body))), auto_ack=True)

    def submit(self, job_id, step_s):
        job = {"id": job_id, "task": "t2v-A14B", "params": {"prompt": "bench [[step_s=%s]]" % step_s, "size": "832*480",
                                                             "sample_steps": STEPS}}
        self.ch.basic_publish(self.prefix + ".jobs", "t2v-A14B", json.dumps(job).encode(),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2, timestamp=int(time.time())))

    def cancel(self, job_id):
        self.ch.basic_publish(self.prefix + ".cancel", "", json.dumps({"id": job_id}).encode())

    def wait(self, predicate, timeout):
        end = time.time() + timeout
        while time.time() < end:
            for at, event in self.events:
                if predicate(event):
                    return at, event
            self.conn.process_data_events(time_limit=0.5)
        raise TimeoutError("no such event within %s s" % timeout)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def measure(warm):
    work = tempfile.mkdtemp(prefix="genworker-warm-bench-")
    w = Worker(work, warm)
    step_s = SAMPLE_S / STEPS
    tag = uuid.uuid4().hex[:4]
    jobs = ["%s-%s-%d" % ("warm" if warm else "cold", tag, i) for i in range(N)]
    t0 = time.time()
    for job in jobs:
        w.submit(job, step_s)
    builds = []
    for job in jobs:
        _, event = w.wait(lambda e, job=job: e["id"] == job and e["event"] in ("completed", "failed", "cancelled"), N * (BUILD_S + SAMPLE_S) + 120)
        assert event["event"] == "completed", event
        builds.append(event.get("pipeline_build_s"))
    elapsed = time.time() - t0
    # A cancel of a running job, with the next job queued behind it.
    victim, after = "%s-victim" % tag, "%s-after" % tag
    w.submit(victim, step_s)
    w.submit(after, step_s)
    w.wait(lambda e: e["id"] == victim and e["event"] == "progress" and (e.get("progress") or {}).get("step", 0) >= 2, BUILD_S + SAMPLE_S + 60)
    sent = time.time()
    w.cancel(victim)
    cancelled_at, _ = w.wait(lambda e: e["id"] == victim and e["event"] == "cancelled", 60)
    first_step_at, _ = w.wait(lambda e: e["id"] == after and e["event"] == "progress" and (e.get("progress") or {}).get("step", 0) >= 1,
                              BUILD_S + SAMPLE_S + 60)
    w.wait(lambda e: e["id"] == after and e["event"] in ("completed", "failed"), SAMPLE_S + 60)
    w.stop()
    return {"mode": "warm" if warm else "cold", "jobs": N, "elapsed_s": round(elapsed, 1), "videos_per_hour": round(N * 3600 / elapsed, 2),
            "cancel_to_result_s": round(cancelled_at - sent, 3), "cancel_to_next_first_step_s": round(first_step_at - sent, 2),
            "pipeline_build_s": builds}


if __name__ == "__main__":
    results = [measure(False), measure(True)]
    print(json.dumps(results, indent=1))
    cold, warm = results
    print("| measure (stand-in: build %g s, sampling %g s, %d jobs, one slot) | cold | warm |" % (BUILD_S, SAMPLE_S, N))
    print("|---|---|---|")
    print("| %d jobs took | %.0f s | %.0f s |" % (N, cold["elapsed_s"], warm["elapsed_s"]))
    print("| videos per hour | %.1f | %.1f |" % (cold["videos_per_hour"], warm["videos_per_hour"]))
    print("| cancel → `cancelled` result | %.3f s | %.3f s |" % (cold["cancel_to_result_s"], warm["cancel_to_result_s"]))
    print("| cancel → next job's first sampling step | %.1f s | %.1f s |" % (cold["cancel_to_next_first_step_s"], warm["cancel_to_next_first_step_s"]))
