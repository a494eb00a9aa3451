"""scripts/gpu-check.sh: three ti2v-5B jobs cold, then three warm, on a real GPU with Wan2.2,
printing per job the pipeline build and the sampling time (from the worker's progress events:
phase `loading` → `generating` is the build, `generating` → the result is sampling and saving).
Not run by CI: it needs a GPU and Wan2.2's checkpoints."""
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import pika

URL, GENWORKER = os.environ["BENCH_AMQP_URL"], os.environ["BENCH_GENWORKER"]
REPO, CKPT, PYTHON = os.environ["WAN_REPO"], os.environ["WAN_CHECKPOINTS"], os.environ.get("WAN_PYTHON", "python3")
PROMPT = os.environ.get("WAN_PROMPT", "Two anthropomorphic cats in comfy boxing gear fight on a spotlighted stage")


def run(warm):
    work = tempfile.mkdtemp(prefix="genworker-gpu-check-")
    prefix = "gpu-check-" + uuid.uuid4().hex[:6]
    config = os.path.join(work, "genworker.yaml")
    with open(config, "w") as f:
        f.write("amqp:\n  url: %s\nworker:\n  name: %s\n  lock_dir: %s\n  tasks: [ti2v-5B]\n" % (URL, prefix, work))
        f.write("topology:\n  jobs_exchange: %s.jobs\n  jobs_queue: %s.jobs\n  events_exchange: %s.events\n" % (prefix, prefix, prefix))
        f.write("  results_queue: %s.results\n  cancel_exchange: %s.cancel\n  cancel_stream: %s.cancel.log\n" % (prefix, prefix, prefix))
        f.write("wan:\n  python: %s\n  repo: %s\n  checkpoints: %s\n  warm: %s\n" % (PYTHON, REPO, CKPT, "true" if warm else "false"))
        f.write("outputs:\n  dir: %s\nmetrics:\n  enabled: false\nprogress:\n  interval_ms: 0\n" % os.path.join(work, "out"))
    log = os.path.join(work, "worker.log")
    proc = subprocess.Popen([GENWORKER, "run", "--config", config], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(400):
            if "consuming" in open(log).read():
                break
            time.sleep(0.05)
        conn = pika.BlockingConnection(pika.URLParameters(URL))
        ch = conn.channel()
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, prefix + ".events", "#")
        for i in range(3):
            job = "%s-%d" % ("warm" if warm else "cold", i)
            ch.basic_publish(prefix + ".jobs", "ti2v-5B", json.dumps({"id": job, "task": "ti2v-5B", "params": {
                "prompt": PROMPT, "size": "1280*704"}}).encode(), pika.BasicProperties(delivery_mode=2))
            phases, result = {}, None
            for method, _, body in ch.consume(queue, inactivity_timeout=3600):
                if body is None:
                    continue
                event, now = json.loads(body), time.time()
                ch.basic_ack(method.delivery_tag)
                phase = (event.get("progress") or {}).get("phase")
                if phase and phase not in phases:
                    phases[phase] = now
                if event["event"] in ("completed", "failed", "cancelled"):
                    result, phases["end"] = event, now
                    break
            ch.cancel()
            build = phases.get("generating", 0) - phases.get("loading", 0) if "loading" in phases else None
            sampling = phases["end"] - phases.get("generating", phases["end"])
            print("%-6s job %d: %-9s pipeline build %s s (worker says %s), sampling and saving %.1f s, total %.1f s" % (
                "warm" if warm else "cold", i, result["event"], "%.1f" % build if build is not None else "?",
                result.get("pipeline_build_s", "-"), sampling, result.get("elapsed_s") or 0), flush=True)
    finally:
        proc.terminate()
        proc.wait()


run(False)
run(True)
