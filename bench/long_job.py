#!/usr/bin/env python3
"""A job longer than RabbitMQ's consumer_timeout, through genworker and through Celery, on one
broker node started with consumer_timeout = 15 s (checked every second through
channel_tick_interval, instead of 3.10's 60 s tick, so the run takes minutes, not tens of
minutes). Counts how often the generator starts and what the client gets.

    scripts/bench-celery.sh runs it after the main comparison (BENCH_LONG_URL set).
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import celery_vs_genworker as bench  # noqa: E402

bench.URL = os.environ["BENCH_LONG_URL"]
JOB_S, WATCH_S = 25, 100


def runs(ledger, job):
    if not os.path.exists(ledger):
        return 0
    return sum(1 for line in open(ledger) if line.startswith("start %s " % job))


def main():
    work = tempfile.mkdtemp(prefix="genworker-long-")
    ledger = os.path.join(work, "ledger.txt")
    os.environ["GENWORKER_STANDIN_LEDGER"] = ledger  # inherited by Celery's task subprocess
    report = []
    for factory in (bench.Genworker, bench.CeleryWorker):
        system = factory(work)
        if isinstance(system, bench.Genworker):
            with open(system.config, "a") as f:
                f.write("env:\n  set:\n    GENWORKER_STANDIN_LEDGER: %s\n" % ledger)
        system.start()
        job = "long-%s" % system.name
        system.submit(job, "[[step_s=0.5]]", steps=JOB_S * 2)
        t0 = time.time()
        got, at = None, None
        # Watch the whole window: a job can run again after the client already has a result.
        while time.time() - t0 < WATCH_S:
            if got is None:
                if isinstance(system, bench.Genworker):
                    t = system.poll_result(job)
                    got = system.results[job][1] if t else None
                else:
                    got = system.pending[job].state if system.pending[job].ready() else None
                at = round(time.time() - t0) if got else None
            time.sleep(0.5)
        report.append((system.name, runs(ledger, job), got or "nothing within %d s" % WATCH_S, at))
        system.stop()
    print("| system | job of %d s, consumer_timeout 15 s: generator starts | what the client got | after (s) | (watched %d s) |" % (JOB_S, WATCH_S))
    print("|---|---|---|---|---|")
    for name, count, got, secs in report:
        print("| %s | %d | %s | %s | |" % (name, count, got, secs))


if __name__ == "__main__":
    main()
