"""The Celery side of the benchmark: the usual settings for long GPU jobs (prefork pool,
concurrency 1, prefetch multiplier 1, acks_late), and a task that runs the same stand-in
generator through subprocess, the way Celery users do."""
import os
import subprocess
import sys

from celery import Celery

app = Celery("genworker_bench", broker=os.environ["BENCH_CELERY_BROKER"], backend="rpc://")
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_track_started=True,
    broker_connection_retry_on_startup=True,
    task_default_queue=os.environ.get("BENCH_CELERY_QUEUE", "bench.celery"),
)
if os.environ.get("BENCH_CELERY_QUEUE_TYPE") == "quorum":
    # On a cluster: a replicated queue, as Celery 5.5+ supports (the fleet benchmark).
    app.conf.update(task_default_queue_type="quorum", worker_detect_quorum_queues=True)

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "standin", "generate.py")


@app.task(name="generate")
def generate(job_id, prompt, outputs, steps=20):
    save = os.path.join(outputs, job_id + ".mp4")
    cmd = [sys.executable, STANDIN, "--task", "t2v-A14B", "--ckpt_dir", "/tmp", "--save_file", save,
           "--size", "832*480", "--sample_steps", str(steps), "--prompt", prompt]
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError("generator exited %d" % result.returncode)
    return save
