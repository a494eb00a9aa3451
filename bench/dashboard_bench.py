#!/usr/bin/env python3
"""The dashboard's figures (not a test; minutes), on the private broker:

  rss       dashboard RSS and catch-up time with 100,000 jobs in the ledger window
  live      with 1,000 running jobs: page load (navigation timing, headless Chromium), first
            live update (a progress event published -> the bar in the page), and the
            progress events per second the page keeps up with

    scripts/bench-dashboard.sh
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import topology_yaml  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENWORKER = os.path.join(ROOT, ".build", "dist", "genworker")
URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5679/")


def setup(name):
    work = tempfile.mkdtemp(prefix="dash-bench-%s-" % name)
    prefix = "db-%s-%s" % (name, uuid.uuid4().hex[:6])
    config = os.path.join(work, "dash.yaml")
    with open(config, "w") as f:
        f.write("amqp:\n  url: %s\n" % URL)
        f.write(topology_yaml(prefix))
        f.write("outputs:\n  dir: %s\ndashboard:\n  port: 0\n  max_jobs: 200000\n" % work)
    subprocess.run([GENWORKER, "declare", "--config", config], check=True, stdout=subprocess.DEVNULL)
    conn = pika.BlockingConnection(pika.URLParameters(URL + "%2f?heartbeat=0"))
    return work, prefix, config, conn, conn.channel()


def job_body(job):
    return json.dumps({"id": job, "task": "t2v-A14B", "params": {"prompt": "a prompt of ordinary length for a video, %s" % job,
                                                                   "size": "832*480", "sample_steps": 40}}).encode()


def record(kind, worker, **fields):
    r = {"ledger": 1, "kind": kind, "worker": worker, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ref": uuid.uuid4().hex}
    r.update(fields)
    return json.dumps(r).encode()


def start_dashboard(work, config):
    log = os.path.join(work, "dash.log")
    t0 = time.time()
    proc = subprocess.Popen([GENWORKER, "dashboard", "--config", config], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    text, port = "", None
    while time.time() - t0 < 600:
        text = open(log).read()
        if "ledger caught up" in text and "dashboard on http://" in text:
            port = int(text.split("dashboard on http://127.0.0.1:")[1].split("/")[0])
            break
        time.sleep(0.02)
    return proc, port, time.time() - t0


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(l.split()[1] for l in f if l.startswith("VmRSS:"))) / 1024.0


def bench_rss(jobs=100_000):
    work, prefix, config, conn, ch = setup("rss")
    for i in range(jobs):
        job = "r%06d" % i
        ch.basic_publish(prefix + ".jobs", "t2v-A14B", job_body(job))
        ch.basic_publish("", prefix + ".ledger", record("claim", "w%d" % (i % 16), id=job, task="t2v-A14B", job=job_body(job).decode()))
        ch.basic_publish("", prefix + ".ledger", record("end", "w%d" % (i % 16), id=job, attempt=1, result={
            "version": 1, "id": job, "task": "t2v-A14B", "event": "completed", "status": "completed", "worker": "w%d" % (i % 16),
            "output": "/out/%s.mp4" % job, "elapsed_s": 400.0, "log_tail": ["INFO: Finished."]}))
    conn.close()
    proc, port, ready_s = start_dashboard(work, config)
    time.sleep(2)
    rss = rss_mib(proc.pid)
    t0 = time.time()
    page = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "http://127.0.0.1:%d/" % port],
                          stdout=subprocess.PIPE, text=True).stdout
    page_s = time.time() - t0
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return {"jobs_in_window": jobs, "ledger_records": jobs * 3, "start_to_caught_up_s": round(ready_s, 1),
            "rss_mib": round(rss, 1), "jobs_page": page, "jobs_page_s": round(page_s, 3)}


def bench_live(running=1000, rates=(100, 500, 2000)):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    work, prefix, config, conn, ch = setup("live")
    ids = ["l%04d" % i for i in range(running)]
    for job in ids:
        ch.basic_publish(prefix + ".jobs", "t2v-A14B", job_body(job))
        ch.basic_publish("", prefix + ".ledger", record("claim", "w%d" % (hash(job) % 8), id=job, task="t2v-A14B", job=job_body(job).decode()))
    proc, port, ready_s = start_dashboard(work, config)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    out = {"running_jobs": running}
    try:
        loads = []
        for _ in range(5):
            driver.get("http://127.0.0.1:%d/?state=running" % port)
            t = driver.execute_script("var n=performance.getEntriesByType('navigation')[0];return [n.responseEnd-n.startTime, n.loadEventEnd-n.startTime]")
            loads.append(t)
        out["page_rows"] = driver.execute_script("return document.querySelectorAll('tr[data-job]').length")
        out["page_response_ms"] = round(sorted(l[0] for l in loads)[2], 1)
        out["page_load_ms"] = round(sorted(l[1] for l in loads)[2], 1)
        time.sleep(1)
        # First live update: a progress event for a job on the page.
        shown = driver.execute_script("return document.querySelector('tr[data-job]').getAttribute('data-job')")
        firsts = []
        for k in range(5):
            before = driver.execute_script("return window.applied||0")
            event = {"version": 1, "id": shown, "task": "t2v-A14B", "event": "progress", "worker": "w",
                     "progress": {"step": k + 1, "total": 40, "percent": (k + 1) * 2}}
            t0 = time.time()
            ch.basic_publish(prefix + ".events", shown + ".progress", json.dumps(event).encode())
            while driver.execute_script("return window.applied||0") == before and time.time() - t0 < 10:
                time.sleep(0.001)
            firsts.append((time.time() - t0) * 1000)
        out["first_live_update_ms"] = [round(x, 1) for x in firsts]
        # Events per second: publish at a rate for 5 s; how many did the page apply, and how late.
        rates_out = []
        for rate in rates:
            before = driver.execute_script("return window.applied||0")
            n = rate * 5
            t0 = time.time()
            for i in range(n):
                job = ids[i % running]
                event = {"version": 1, "id": job, "task": "t2v-A14B", "event": "progress", "worker": "w",
                         "progress": {"step": i % 40, "total": 40, "percent": (i % 40) * 100 // 40}}
                ch.basic_publish(prefix + ".events", job + ".progress", json.dumps(event).encode())
                lag = t0 + (i + 1) / rate - time.time()
                if lag > 0:
                    time.sleep(lag)
            sent_s = time.time() - t0
            while time.time() - t0 < sent_s + 10 and driver.execute_script("return window.applied||0") - before < n:
                time.sleep(0.05)
            applied = driver.execute_script("return window.applied||0") - before
            rates_out.append({"rate_per_s": rate, "sent": n, "send_s": round(sent_s, 2), "applied": applied,
                              "all_applied_after_s": round(time.time() - t0, 2)})
        out["rates"] = rates_out
        out["dashboard_rss_mib"] = round(rss_mib(proc.pid), 1)
    finally:
        driver.quit()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return out


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    report = {}
    if what in ("rss", "all"):
        report["rss"] = bench_rss()
    if what in ("live", "all"):
        report["live"] = bench_live()
    print(json.dumps(report, indent=1))
