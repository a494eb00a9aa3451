#!/usr/bin/env python3
"""Fault injection, Jepsen style: the real fleet (`genworker run` processes on the three-node
cluster of scripts/cluster.sh) under real faults, its history recorded from outside
(bench/history_record.py) and judged by bench/history_check.py.

    chaos.py [--duration S] [--jobs N] [--workers 1,2,3,4] [--faults a,b,...|all] [--seed N]
             [--out DIR] [--genworker PATH] [--lease S] [--rounds N] [--settle S] [--window S]

Fault classes (each injected for real, one at a time, in an order and at moments drawn
from --seed; --rounds repeats the whole set):
  a  network partition of one worker, and of the whole fleet at once: iptables DROP inside
     each worker's own network namespace (bench/chaosnet.py), one direction or both, for
     seconds and for longer than the lease
  b  clock skew: a worker restarted with GENWORKER_CLOCK_OFFSET_S (hours, either way)
  c  a worker's whole process group SIGSTOPped past the lease, then SIGCONTed
  d  the node leading the ledger stream stopped while the fleet writes, then started again
  e  a burst of short jobs at the multi-slot workers (a backlog)
  f  duplicate submissions: the same id while queued, while running, after the end, with and
     without reply_to, and with a broken body; and a job broken from the start
  g  a reply_to queue that refuses publishes (x-max-length 0, reject-publish)
  h  ledger records (end, release, expire, heartbeat) forged by a broker user that is no worker
  kill    a worker SIGKILLed and restarted under its name
  cancel  cancels of running and of queued jobs
  i  a job longer than the ledger window (--window, 120 s by default): once its claim has left
     the window, a duplicate of it is submitted with a reply_to, and its owner is SIGKILLed and
     restarted two leases later; the job is known to the others only from its owner's carry
     records. It comes first in each round: its run and its rerun each take window + 6 leases

Everything lands in --out: the workers' logs, config files, submitted.jsonl, cancels.jsonl,
duplicates.jsonl, faults.jsonl, messages.jsonl (the recorder), standin.txt (the stand-in's
runs), check.txt (the checker's verdict) and summary.json. Exit status: the checker's (1 on
any violation), or 1 if a duplicate's reply_to did not get its answer (dup-reply) or a job failed
that the stand-in was never asked to fail (unexpected-failure), 2 if the harness itself failed.
"""
import argparse
import datetime
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pika

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import chaosnet  # noqa: E402
import history_check  # noqa: E402
from benchkit import topology_yaml  # noqa: E402

PY = sys.executable
CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
CLASSES = {"a": "network partition", "b": "clock skew", "c": "process group stopped", "d": "ledger leader stopped",
           "e": "backlog burst", "f": "duplicate submissions", "g": "refusing reply_to", "h": "forged ledger records",
           "i": "job longer than the ledger window", "kill": "worker SIGKILL + restart", "cancel": "cancels"}
FORGER = ("chaos-forger", "forger-pw")


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Publisher:
    """Confirmed, persistent publishes from any thread; reconnects to another node when the
    broker goes away. `avoid` moves it off a node before the harness stops that node, so no
    publish is in flight there (a retried publish could be a second copy of a submission)."""

    def __init__(self, urls, credentials=None):
        self.urls, self.credentials, self.lock = urls, credentials, threading.Lock()
        self.url, self.connection, self.channel = None, None, None
        self._connect(urls)

    def _connect(self, urls):
        for attempt in range(240):
            url = urls[attempt % len(urls)]
            try:
                params = pika.URLParameters(url + "%2f?heartbeat=0")
                if self.credentials:
                    params.credentials = pika.PlainCredentials(*self.credentials)
                self.connection = pika.BlockingConnection(params)
                self.channel = self.connection.channel()
                self.channel.confirm_delivery()
                self.url = url
                return
            except pika.exceptions.AMQPError:
                time.sleep(0.5)
        raise RuntimeError("cannot connect to any of %s" % urls)

    def publish(self, exchange, key, body, **props):
        """Returns how many times it had to try again (0: the first publish was confirmed)."""
        with self.lock:
            for attempt in range(60):
                try:
                    self.channel.basic_publish(exchange, key, body, pika.BasicProperties(
                        content_type="application/json", delivery_mode=2, **props))
                    return attempt
                except (pika.exceptions.AMQPError, OSError):
                    time.sleep(0.5)
                    self._connect(self.urls)
            raise RuntimeError("cannot publish to %s" % exchange)

    def avoid(self, port):
        with self.lock:
            if self.url and (":%d/" % port) in self.url:
                try:
                    self.connection.close()
                except Exception:
                    pass
                self._connect([u for u in self.urls if (":%d/" % port) not in u])

    def close(self):
        try:
            self.connection.close()
        except Exception:
            pass


class Observed:
    """What the recorder has written so far (results and replies), read as it grows, over
    every part (a recorder that died is replaced by one writing a new part)."""

    def __init__(self):
        self.pos, self.lock = {}, threading.Lock()
        self.results, self.replies = {}, []  # id -> first result body; (queue, id, correlation_id, body)

    def refresh(self, paths):
        with self.lock:
            for path in paths:
                if os.path.exists(path):
                    self._read(path)

    def _read(self, path):
        with open(path) as f:
            f.seek(self.pos.get(path, 0))
            while True:
                line = f.readline()
                if not line.endswith("\n"):
                    break  # half written: read it next time
                self.pos[path] = f.tell()
                m = json.loads(line)
                ch, body = m.get("channel", ""), m.get("body")
                if ch == "results" and isinstance(body, dict):
                    self.results.setdefault(body.get("id") or m.get("message_id"), body)
                elif ch.startswith("reply:"):
                    self.replies.append((ch[6:], body.get("id") if isinstance(body, dict) else m.get("message_id"),
                                         m.get("correlation_id"), body))


class Standin:
    """The stand-in generator's own record of its runs (start/end lines), read as it grows."""

    def __init__(self, path):
        self.path, self.pos, self.starts, self.ends = path, 0, {}, {}

    def refresh(self):
        if not os.path.exists(self.path):
            return
        with open(self.path) as f:
            f.seek(self.pos)
            for line in f:
                if not line.endswith("\n"):
                    break
                self.pos += len(line.encode())
                parts = line.split()
                if len(parts) != 4:
                    continue
                kind, job, pid, t = parts
                (self.starts if kind == "start" else self.ends)[(job, int(pid))] = float(t)

    def running(self):
        """[(job, pid, start, worker name)] of runs alive now."""
        self.refresh()
        out = []
        for (job, pid), t in self.starts.items():
            if (job, pid) in self.ends:
                continue
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            owner = next((v.split(b"=", 1)[1].decode() for v in env if v.startswith(b"GENWORKER_OWNER=")), "")
            out.append((job, pid, t, owner.split("@")[0]))
        return out


class Worker:
    def __init__(self, h, n, slots):
        self.h, self.n, self.slots = h, n, slots
        self.name = "%s-w%d" % (h.prefix, n)
        self.ns = h.net.namespace(n)
        self.log_path = os.path.join(h.out, self.name + ".log")
        self.config = os.path.join(h.out, self.name + ".yaml")
        self.proc, self.offset, self.stopped = None, 0, False
        urls = ", ".join("amqp://guest:guest@127.0.0.1:%d/" % p for p in h.ports)  # the relays inside the namespace
        with open(self.config, "w") as f:
            f.write("amqp:\n  urls: [%s]\n  reconnect_max_s: 2\n" % urls)
            f.write("worker:\n  name: %s\n  slots: %d\n  lock_dir: %s\n" % (self.name, slots, h.locks))
            f.write(topology_yaml(h.prefix))
            f.write("  ledger_retention_h: %s\n" % (h.a.window / 3600))
            f.write("wan:\n  python: %s\n  repo: %s\n  checkpoints: /tmp\n" % (PY, os.path.join(ROOT, "examples", "standin")))
            f.write("outputs:\n  dir: %s\nsupervisor:\n  grace_s: 1\njobs:\n  lease_s: %s\n" % (h.videos, h.a.lease))
            f.write("shutdown:\n  mode: drain\n  drain_timeout_s: 30\nmetrics:\n  enabled: false\n")
            f.write("env:\n  set:\n    GENWORKER_STANDIN_LEDGER: %s\n" % h.standin_path)

    def log_size(self):
        return os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0

    def log_since(self, pos):
        with open(self.log_path, "rb") as f:
            f.seek(pos)
            return f.read().decode("utf-8", "replace")

    def note(self, text):
        with open(self.log_path, "a") as f:
            f.write("=== chaos %.3f: %s\n" % (time.time(), text))

    def start(self, offset=None, wait=60):
        """Starts `genworker run` in the worker's namespace, in a session of its own (its pgid
        is its pid); returns whether it logged that it consumes within `wait` seconds."""
        if offset is not None:
            self.offset = offset
        env = {k: v for k, v in os.environ.items() if k not in ("GENWORKER_AMQP_URL", "GENWORKER_WORKER_NAME",
                                                                 "GENWORKER_CLOCK_OFFSET_S")}
        if self.offset:
            env["GENWORKER_CLOCK_OFFSET_S"] = str(self.offset)
        self.note("start (clock offset %s s)" % self.offset)
        pos = self.log_size()
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, self.h.binary, "run", "--config", self.config],
                                     stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        self.stopped = False
        return wait_for(lambda: "consuming " in self.log_since(pos), wait)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def group(self, sig):
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def terminate(self, timeout):
        """SIGTERM (drain); SIGKILL past `timeout`. Returns how it ended."""
        if not self.alive():
            return "not running"
        self.group(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return "exit %d" % self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "SIGKILLed after %d s" % timeout


def wait_for(cond, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


class Chaos:
    def __init__(self, a, binary, ports, urls):
        self.a, self.binary, self.ports, self.urls = a, binary, ports, urls
        self.rng, self.job_rng = random.Random(a.seed), random.Random(a.seed + 1)
        self.out = a.out
        self.prefix = "chaos-%s" % uuid.uuid4().hex[:6]
        self.locks, self.videos = os.path.join(self.out, "locks"), os.path.join(self.out, "videos")
        for d in (self.locks, self.videos):
            os.makedirs(d, exist_ok=True)
        self.standin_path = os.path.join(self.out, "standin.txt")
        self.messages_path = os.path.join(self.out, "messages.jsonl")
        self.reply_queues = [self.prefix + ".reply.a", self.prefix + ".reply.b"]  # recorded
        self.full_queue = self.prefix + ".reply.full"  # refuses everything: not recorded, nothing expected there
        self.file_lock = threading.Lock()
        self.files = {name: open(os.path.join(self.out, name + ".jsonl"), "a")
                      for name in ("submitted", "cancels", "duplicates", "faults")}
        self.submitted, self.plan = {}, {}  # id -> first submission time; id -> planned seconds of work
        self.faults, self.workers, self.net, self.recorder, self.publisher = [], [], None, None, None
        self.standin, self.observed = Standin(self.standin_path), Observed()
        self.parts, self.recorder_gaps, self.stopping = [], [], False
        self.seq, self.hit, self.node_down = 0, set(), None
        self.log_file = open(os.path.join(self.out, "chaos.log"), "a")

    # --- plumbing ------------------------------------------------------------------------------

    def say(self, text):
        line = "chaos %7.1f s: %s" % (time.time() - getattr(self, "t0", time.time()), text)
        print(line, file=sys.stderr, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def append(self, name, record):
        with self.file_lock:
            self.files[name].write(json.dumps(record) + "\n")
            self.files[name].flush()

    def ctl(self, *args):
        """rabbitmqctl on the first node that answers."""
        for n in range(1, len(self.ports) + 1):
            r = subprocess.run([CLUSTER, "ctl", str(n)] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=60)
            if r.returncode == 0:
                return r.stdout
        raise RuntimeError("rabbitmqctl %s failed on every node" % " ".join(args))

    def new_id(self, kind):
        with self.file_lock:  # the submitter and the nemesis both make ids
            self.seq += 1
            return "%s%05d" % (kind, self.seq)

    def job_body(self, job, seconds_per_step, steps):
        return json.dumps({"id": job, "task": "t2v-A14B", "params": {
            "prompt": "chaos %s [[step_s=%s]]" % (job, seconds_per_step), "size": "832*480", "sample_steps": steps}})

    def submit(self, job, body, reply_to=None, correlation_id=None, duplicate=None, seconds=0.0):
        """Publishes a job; the first submission of an id goes to submitted.jsonl (the checker
        expects one result per id), a later one to duplicates.jsonl (see check_duplicates)."""
        props = {"message_id": job, "timestamp": int(time.time())}
        if reply_to:
            props.update(reply_to=reply_to, correlation_id=correlation_id)
        t = time.time()
        retries = self.publisher.publish(self.prefix + ".jobs", "t2v-A14B", body.encode(), **props)
        record = {"id": job, "t": t}
        if reply_to:
            record.update(reply_to=reply_to, correlation_id=correlation_id)
        if retries:
            record["publish_retries"] = retries  # the broker may hold more than one copy
        if duplicate is None and job not in self.submitted:
            self.submitted[job], self.plan[job] = t, seconds
            self.append("submitted", record)
        else:
            record["kind"] = duplicate or "resubmitted"
            self.append("duplicates", record)

    def submit_job(self, kind=None):
        rng = self.job_rng  # its own: the nemesis's draws stay the same whatever the submitter does
        with self.file_lock:
            kind = kind or rng.choices(["short", "medium", "long"], [85, 10, 5])[0]
            step_s, steps = {"short": (0.02, rng.randint(2, 8)), "medium": (0.1, rng.randint(10, 30)),
                             "long": (0.2, rng.randint(25, 60))}[kind]
        job = self.new_id({"short": "s", "medium": "m", "long": "l"}[kind])
        self.submit(job, self.job_body(job, step_s, steps), seconds=step_s * steps)
        return job

    def cancel(self, job, why):
        self.publisher.publish(self.prefix + ".cancel", "", json.dumps({"id": job}).encode())
        self.append("cancels", {"id": job, "t": time.time(), "why": why})  # after the confirm: published by then

    def running(self, min_left=0.0):
        """Runs alive now whose planned work has at least `min_left` seconds to go."""
        now = time.time()
        return [r for r in self.standin.running() if r[2] + self.plan.get(r[0], 0) - now >= min_left]

    def victim(self, min_left):
        """A worker running a job with `min_left` seconds to go: submits long jobs if none does."""
        for attempt in range(3):
            runs = [r for r in self.running(min_left) if self.by_name(r[3]) and not self.by_name(r[3]).stopped]
            # A job hit before is spared (until the last try): each expiry counts against
            # topology.delivery_limit, and the classes should meet different jobs.
            runs = [r for r in runs if r[0] not in self.hit] or (runs if attempt == 2 else [])
            if runs:
                job, pid, _, name = self.rng.choice(sorted(runs))
                self.hit.add(job)
                return self.by_name(name), job
            for _ in range(2):
                j = self.new_id("l")
                self.submit(j, self.job_body(j, 0.2, 75), seconds=15)
            wait_for(lambda: self.running(min_left), 20, 0.2)
        w = self.rng.choice([w for w in self.workers if w.alive()])
        return w, None

    def by_name(self, name):
        return next((w for w in self.workers if w.name == name), None)

    # --- fault classes -------------------------------------------------------------------------

    def fault_a(self, seconds, direction, fleet=False):
        """Partition one worker (or, with `fleet`, every worker at once: nobody is left to
        expire anything) from every broker for `seconds`, one direction or both. Verified: a TCP
        handshake from the namespace must fail during it and succeed after the heal."""
        w, job = self.victim(min_left=min(seconds, self.a.lease))
        victims = [v for v in self.workers if v.alive()] if fleet else [w]
        pos = {v.name: v.log_size() for v in victims}
        t0 = time.time()
        for v in victims:
            v.note("partition %s for %.1f s" % (direction, seconds))
            self.net.partition(v.ns, direction)
        blackholed = all(not self.net.probe(v.ns, self.ports[0]) for v in victims)
        time.sleep(max(0.0, t0 + seconds - time.time()))
        for v in victims:
            self.net.heal(v.ns)
            v.note("healed")
        healed = all(wait_for(lambda: self.net.probe(v.ns, self.ports[0]), 10, 0.5) for v in victims)
        logs = {v.name: v.log_since(pos[v.name]) for v in victims}
        # Who stopped the runs: a worker's own fence (0.9 x lease - grace), or its watchdog
        # (0.95 x lease) because the worker itself was stuck.
        return {"workers": sorted(logs), "job": job, "direction": direction, "seconds": seconds, "blackholed": blackholed,
                "healed": healed, "fence_logged": sorted(n for n, l in logs.items() if "no renewal of this job reached" in l),
                "watchdog_killed": sorted(n for n, l in logs.items() if "lease deadline passed without renewal" in l)}

    def fault_b(self, offset):
        """Restart one worker (SIGTERM: drain) with its clock shifted by `offset` seconds."""
        w = self.rng.choice([w for w in self.workers if w.alive()])
        offset = 0 if w.offset else offset  # a skewed worker gets its clock back
        how = w.terminate(60)
        consuming = w.start(offset=offset)
        return {"worker": w.name, "offset_s": offset, "stopped": how, "consuming": consuming}

    def fault_c(self, seconds):
        """SIGSTOP a worker's whole process group past the lease (the watchdog, in a session of
        its own, must kill its generators), then SIGCONT: it must publish nothing it lost."""
        w, job = self.victim(min_left=2)
        pos = w.log_size()
        w.note("SIGSTOP group for %.1f s" % seconds)
        w.stopped = True
        w.group(signal.SIGSTOP)
        time.sleep(seconds)
        w.group(signal.SIGCONT)
        w.stopped = False
        w.note("SIGCONT")
        lost = wait_for(lambda: "losing its ownership" in w.log_since(pos), 10) if job else None
        return {"worker": w.name, "job": job, "seconds": seconds, "logged_lost_ownership": lost,
                "watchdog_killed": "lease deadline passed without renewal" in w.log_since(pos)}

    def fault_d(self, seconds):
        """Stop the node that leads the ledger stream while claims, ends and expiries are
        written (jobs keep coming), and start it again `seconds` later."""
        rows = json.loads(self.ctl("-q", "list_queues", "name", "leader", "--formatter", "json"))
        leader = next(r["leader"] for r in rows if r["name"] == self.prefix + ".ledger")
        port = int(leader.split("@")[0].rsplit("-", 1)[1])
        n = self.ports.index(port) + 1
        self.publisher.avoid(port)
        self.victim(min_left=seconds / 2)  # something running while the leader goes
        t = time.time()
        self.node_down = n  # started again by cleanup() if the run is interrupted meanwhile
        subprocess.run([CLUSTER, "stop-node", str(n)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stopped_s = time.time() - t
        for _ in range(int(seconds / 0.5)):  # claims and ends meanwhile
            if self.rng.random() < 0.5:
                self.submit_job("short")
            time.sleep(0.5)
        t = time.time()
        subprocess.run([CLUSTER, "start-node", str(n)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.node_down = None
        rows = json.loads(self.ctl("-q", "list_queues", "name", "leader", "--formatter", "json"))
        return {"node": n, "leader": leader, "down_s": seconds, "stop_s": round(stopped_s, 1),
                "start_s": round(time.time() - t, 1),
                "new_leader": next((r["leader"] for r in rows if r["name"] == self.prefix + ".ledger"), None)}

    def fault_e(self, count):
        """A burst of short jobs at once: every slot busy, a backlog in the queue."""
        for _ in range(count):
            self.submit_job("short")
        return {"jobs": count}

    def fault_f(self):
        """Duplicates of every kind. The first submission of an id is the one in submitted.jsonl."""
        qa, qb = self.reply_queues
        out = {}
        # While queued: behind a burst, so the original is still in the queue.
        for _ in range(3 * sum(w.slots for w in self.workers)):
            self.submit_job("short")
        q = self.new_id("fq")
        body = self.job_body(q, 0.02, 4)
        self.submit(q, body, reply_to=qa, correlation_id="orig", seconds=0.08)
        self.submit(q, body, duplicate="queued")
        self.submit(q, body, reply_to=qb, correlation_id="dup-queued", duplicate="queued")
        out["queued"] = q
        # While running.
        r = self.new_id("fr")
        body = self.job_body(r, 0.2, 40)
        self.submit(r, body, reply_to=qa, correlation_id="orig", seconds=8)
        out["running_started"] = wait_for(lambda: any(x[0] == r for x in self.standin.running()), 40)
        self.submit(r, body, duplicate="running")
        self.submit(r, body, reply_to=qb, correlation_id="dup-running", duplicate="running")
        broken = json.dumps({"id": r, "task": "t2v-A14B", "params": "not an object"})
        self.submit(r, broken, reply_to=qb, correlation_id="broken-running", duplicate="broken")
        out["running"] = r
        # After the end.
        e = self.new_id("fe")
        body = self.job_body(e, 0.02, 3)
        self.submit(e, body, seconds=0.06)
        out["ended_result_seen"] = wait_for(lambda: self.seen() or e in self.observed.results, 60, 0.3)
        self.submit(e, body, duplicate="ended")
        self.submit(e, body, reply_to=qa, correlation_id="dup-ended", duplicate="ended")
        broken = json.dumps({"id": e, "task": "t2v-A14B", "params": {"prompt": 7}})
        self.submit(e, broken, reply_to=qb, correlation_id="broken-ended", duplicate="broken")
        out["ended"] = e
        # Broken from the start: its one result is failed/invalid_job.
        x = self.new_id("fx")
        self.submit(x, json.dumps({"id": x, "task": "t2v-A14B", "params": ["not", "an", "object"]}),
                    reply_to=qa, correlation_id="orig")
        out["broken"] = x
        return out

    def fault_g(self):
        """Results to a reply_to that refuses them; the job's result still goes to results,
        and nothing else is held up. A duplicate while running refuses too."""
        g = self.new_id("fg")
        body = self.job_body(g, 0.1, 30)
        pos = [w.log_size() for w in self.workers]
        self.submit(g, body, reply_to=self.full_queue, correlation_id="orig", seconds=3)
        wait_for(lambda: any(x[0] == g for x in self.standin.running()), 20)
        self.submit(g, body, reply_to=self.full_queue, correlation_id="dup-full", duplicate="running")
        ok = wait_for(lambda: self.seen() or g in self.observed.results, 60, 0.3)
        refused = wait_for(lambda: any("refused the result" in w.log_since(p) for w, p in zip(self.workers, pos)), 10)
        return {"job": g, "result_seen": ok, "refusal_logged": refused}

    def ledger_runs(self):
        """{job: (worker, attempt)} of the running jobs, as the ledger's fold says
        (`genworker jobs --state running`, the CLI's own reading of the window)."""
        out = subprocess.run([self.binary, "jobs", "--state", "running", "--config", self.workers[0].config,
                              "--url", ",".join(self.urls)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, timeout=60).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {r["id"]: (r["worker"], r["attempt"]) for r in rows if r.get("worker") and r.get("attempt")}

    def fault_h(self):
        """A broker account that is no worker's writes end, release, expire and heartbeat
        records for running jobs in their owners' names (half with its user_id, half without)."""
        kinds = ["end", "release", "expire", "heartbeat"]
        for _ in range(len(kinds)):  # enough long runs for one forgery of each kind, if the slots allow
            j = self.new_id("l")
            self.submit(j, self.job_body(j, 0.2, 60), seconds=12)
        want = min(len(kinds), sum(w.slots for w in self.workers))
        wait_for(lambda: len(self.running(min_left=5)) >= want, 30, 0.3)
        time.sleep(self.a.lease / 4 + 1)  # a heartbeat lists them
        live = {r[0] for r in self.running(min_left=2)}
        listed = self.ledger_runs()
        targets = [(job, owner) for job, owner in sorted(listed.items()) if job in live]
        self.rng.shuffle(targets)
        shift = self.rng.randrange(len(kinds))  # with fewer targets than kinds, each kind still gets its turn
        kinds = kinds[shift:] + kinds[:shift]
        forger = Publisher(self.urls, credentials=FORGER)
        forged = []
        for (job, (worker, attempt)), kind in zip(targets, kinds):
            rec = {"ledger": 1, "kind": kind, "worker": worker, "at": now_iso(), "ref": "forged-" + uuid.uuid4().hex}
            if kind == "end":
                rec.update(id=job, attempt=attempt, result={
                    "version": 1, "id": job, "task": "t2v-A14B", "event": "completed", "status": "completed",
                    "output": "/nonexistent/forged.mp4", "exit_code": 0, "worker": worker, "message": "forged"})
            elif kind in ("release", "expire"):
                rec.update(id=job, attempt=attempt)
                if kind == "expire":
                    rec["counter"] = 0
            else:  # a renewal in the owner's name, with a counter no real heartbeat reaches (the fold keeps the highest)
                rec.update(counter=2 ** 53, runs=[{"id": job, "attempt": attempt}], slots=1, node="forged", version="forged")
            props = {"user_id": FORGER[0]} if len(forged) % 2 == 0 else {}
            forger.publish("", self.prefix + ".ledger", json.dumps(rec).encode(), **props)
            forged.append({"kind": kind, "job": job, "owner": worker, "attempt": attempt, "user_id": props.get("user_id"),
                           "t": time.time()})
        forger.close()
        return {"forged": forged, "running": len(live), "in_heartbeats": len(listed)}

    def fault_kill(self, down_s):
        """SIGKILL a worker (its watchdog kills its generators) and start it again under its name."""
        w, job = self.victim(min_left=2)
        pos = w.log_size()
        w.note("SIGKILL")
        w.proc.kill()
        w.proc.wait()
        time.sleep(down_s)
        consuming = w.start()
        return {"worker": w.name, "job": job, "down_s": down_s, "consuming": consuming,
                "earlier_life_logged": "earlier life" in w.log_since(pos)}

    def fault_i(self):
        """A job longer than the ledger window: past the window, a duplicate with a reply_to
        (it must attach, not run again), then its owner SIGKILLed and restarted (another worker,
        knowing the job only from carry records, must requeue it from the carried body)."""
        window = self.a.window
        j = self.new_id("li")
        seconds = window + 6 * self.a.lease
        self.hit.add(j)  # not a victim of the other classes
        body = self.job_body(j, 0.5, int(seconds / 0.5))
        self.submit(j, body, reply_to=self.reply_queues[0], correlation_id="orig", seconds=seconds)
        started = wait_for(lambda: any(x[0] == j for x in self.standin.running()), 120, 0.5)
        t_start = time.time()
        time.sleep(window + 5)
        self.submit(j, body, reply_to=self.reply_queues[1], correlation_id="dup-beyond-window", duplicate="running")
        time.sleep(3)
        owners = [x[3] for x in self.standin.running() if x[0] == j]
        w = self.by_name(owners[0]) if owners else None
        out = {"job": j, "started": started, "window_s": window, "planned_s": seconds,
               "running_after_window": bool(owners), "owner": w.name if w else None}
        if w and w.alive():
            w.note("SIGKILL (fault i)")
            w.proc.kill()
            w.proc.wait()
            # Restarted after two leases: another worker, knowing the job only from its carry
            # records, expires the attempt and requeues the job.
            out["rerun"] = wait_for(lambda: any(x[0] == j and x[2] > t_start + window for x in self.standin.running()),
                                    3 * self.a.lease, 0.5)
            out["consuming"] = w.start()
        return out

    def fault_cancel(self):
        """Cancel up to three running jobs and two that were just submitted (likely queued)."""
        self.victim(min_left=2)
        live = sorted({r[0] for r in self.running(min_left=1)})
        hits = self.rng.sample(live, min(3, len(live)))
        fresh = [self.submit_job("medium") for _ in range(2)]
        for job in hits:
            self.cancel(job, "running")
        for job in fresh:
            self.cancel(job, "queued")
        return {"running": hits, "queued": fresh}

    def schedule(self):
        """The faults of every round, each round shuffled, spread over the run."""
        lease, rng, items = self.a.lease, self.rng, []
        for _ in range(self.a.rounds):
            rnd = []
            for c in self.a.faults:
                if c == "a":
                    rnd += [("a", {"seconds": round(rng.uniform(2, 0.5 * lease), 1), "direction": rng.choice(["in", "out", "both"])}),
                            ("a", {"seconds": round(rng.uniform(1.5, 2.5) * lease, 1), "direction": rng.choice(["in", "out"])}),
                            ("a", {"seconds": round(rng.uniform(1.5, 2.5) * lease, 1), "direction": "both"}),
                            ("a", {"seconds": round(rng.uniform(1.2, 2) * lease, 1), "direction": "both", "fleet": True})]
                elif c == "b":
                    rnd.append(("b", {"offset": rng.choice([3600, -3600, 86400, -7200])}))
                elif c == "c":
                    rnd.append(("c", {"seconds": round(rng.uniform(1.5, 2.5) * lease, 1)}))
                elif c == "d":
                    rnd.append(("d", {"seconds": round(rng.uniform(8, 20), 1)}))
                elif c == "e":
                    rnd.append(("e", {"count": rng.randint(40, 80)}))
                elif c == "kill":
                    rnd.append(("kill", {"down_s": round(rng.uniform(0, 1.5 * lease), 1)}))
                else:
                    rnd.append((c, {}))
            rng.shuffle(rnd)
            # The job longer than the window first: its run and rerun outlast everything else.
            items += sorted(rnd, key=lambda item: item[0] != "i")
        span = 0.8 * self.a.duration
        return [(0.05 * self.a.duration + span * i / max(1, len(items)), c, p) for i, (c, p) in enumerate(items)]

    # --- the run -------------------------------------------------------------------------------

    def setup(self):
        chaosnet.remove_stale("gwc")
        self.net = chaosnet.Relays(self.ports, "/tmp/gwc%d" % os.getpid(), "gwc%dw" % os.getpid())
        host_urls = ",".join(self.urls)
        self.workers = [Worker(self, n, slots) for n, slots in enumerate(self.a.workers, 1)]
        subprocess.run([self.binary, "declare", "--config", self.workers[0].config, "--url", host_urls], check=True,
                       stdout=subprocess.DEVNULL)
        self.publisher = Publisher(self.urls)
        ch = self.publisher.channel
        for q in self.reply_queues:  # quorum: a reply must survive a node's stop like the results do
            ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_declare(self.full_queue, durable=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
        if "h" in self.a.faults:
            try:
                self.ctl("add_user", *FORGER)
            except RuntimeError:
                self.ctl("change_password", *FORGER)  # left by an earlier run
            self.ctl("set_permissions", "-p", "/", FORGER[0], ".*", ".*", ".*")
        self.start_recorder()
        threading.Thread(target=self.watch_recorder, daemon=True).start()
        for w in self.workers:
            if not w.start():
                raise RuntimeError("worker %s did not start consuming; see %s" % (w.name, w.log_path))

    def start_recorder(self):
        """bench/history_record.py into a new part (it truncates its --out file)."""
        path = os.path.join(self.out, "messages.part%d.jsonl" % len(self.parts))
        self.parts.append(path)
        self.recorder = subprocess.Popen(
            [PY, os.path.join(BENCH, "history_record.py"), "--out", path, "--results-queue", self.prefix + ".results",
             "--events-exchange", self.prefix + ".events", "--ledger-stream", self.prefix + ".ledger"] +
            sum((["--url", u] for u in self.urls), []) + sum((["--reply-queue", q] for q in self.reply_queues), []),
            stdout=open(os.path.join(self.out, "recorder.log"), "a"), stderr=subprocess.STDOUT)

    def watch_recorder(self):
        """The recorder gives up when its reconnect fails halfway (pika raises out of its
        subscribe); results and replies wait in their queues, so a new one loses none of them."""
        while not self.stopping:
            if self.recorder.poll() is not None and not self.stopping:
                died = time.time()
                self.say("the recorder exited (%s); starting another" % self.recorder.returncode)
                self.start_recorder()
                self.recorder_gaps.append({"channel": "gap", "t": died, "until": time.time(),
                                           "reason": "recorder exited %s" % self.recorder.returncode})
            time.sleep(0.5)

    def seen(self):
        self.observed.refresh(self.parts)

    def merge_parts(self):
        """messages.jsonl for the checker: the parts in order, without what a later recorder got
        again because the one before died between writing and acking it (the recorder's own
        rule for its redeliveries, applied across recorders), with a gap line per restart."""
        written, out = {}, open(self.messages_path, "w")
        for path in self.parts:
            for line in open(path):
                m = json.loads(line)
                key = json.dumps([m.get(k) for k in ("channel", "body", "message_id", "correlation_id", "routing_key")],
                                 sort_keys=True)
                if m.get("redelivered") and written.get(key, 0) > 0:
                    written[key] -= 1
                    continue
                if "body" in m and m.get("channel") != "ledger":
                    written[key] = written.get(key, 0) + 1
                out.write(line)
        for gap in self.recorder_gaps:
            out.write(json.dumps(gap) + "\n")
        out.close()

    def submitter(self):
        span = 0.8 * self.a.duration
        for i in range(self.a.jobs):
            time.sleep(max(0.0, self.t0 + span * i / self.a.jobs - time.time()))
            self.submit_job()

    def nemesis(self):
        for at, cls, params in self.schedule():
            time.sleep(max(0.0, self.t0 + at - time.time()))
            t0 = time.time()
            self.say("fault %s (%s) %s" % (cls, CLASSES[cls], params))
            try:
                detail = getattr(self, "fault_" + cls)(**params)
            except Exception as e:  # a fault that could not be injected is reported, not hidden
                detail = {"error": repr(e)}
            rec = {"class": cls, "t0": t0, "t1": time.time(), "params": params, "detail": detail}
            self.say("fault %s done in %.1f s: %s" % (cls, rec["t1"] - t0, json.dumps(detail)))
            self.faults.append(rec)
            self.append("faults", rec)

    def run(self):
        self.t0 = time.time()
        self.setup()
        self.say("fleet up: %s, prefix %s, out %s" % (", ".join("%s/%d" % (w.name, w.slots) for w in self.workers),
                                                       self.prefix, self.out))
        self.t0 = time.time()
        threads = [threading.Thread(target=f, daemon=True) for f in (self.submitter, self.nemesis)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Quiesce: every worker healed, running and awake, then every job answered (bounded).
        self.died = []
        for w in self.workers:
            self.net.heal(w.ns)
            w.group(signal.SIGCONT)
            w.stopped = False
            if not w.alive():  # nothing here kills a worker for good: it crashed
                self.died.append("%s: %s" % (w.name, w.proc.returncode))
                self.say("worker %s had exited by itself (%s); starting it again" % (w.name, w.proc.returncode))
                w.start()
        self.say("submitted %d ids; waiting up to %d s for their results" % (len(self.submitted), self.a.settle))
        ids = set(self.submitted)
        wait_for(lambda: self.seen() or ids <= set(self.observed.results), self.a.settle, 1)
        unanswered = sorted(ids - set(self.observed.results))
        self.say("%d ids unanswered; stopping the workers" % len(unanswered))
        stops = {w.name: w.terminate(60) for w in self.workers}
        time.sleep(2)  # the stand-in's witnesses write their end lines
        self.stopping = True
        self.recorder.send_signal(signal.SIGTERM)  # then it reads the whole ledger
        self.recorder.wait(300)
        self.merge_parts()
        return self.judge(unanswered, stops)

    def check_duplicates(self):
        """Every duplicate with a recorded reply_to gets an answer there with its correlation_id:
        a broken one failed/invalid_job, a valid one the job's result (docs/protocol.md)."""
        self.seen()
        problems = []
        for line in open(os.path.join(self.out, "duplicates.jsonl")):
            d = json.loads(line)
            if d.get("reply_to") not in self.reply_queues:
                continue
            got = [b for q, job, c, b in self.observed.replies if q == d["reply_to"] and job == d["id"] and c == d["correlation_id"]]
            want = self.observed.results.get(d["id"], {}).get("status") if d["kind"] != "broken" else "failed"
            if not got:
                problems.append("dup-reply: %s duplicate of %s (%s, correlation_id %s) at %.3f got no answer"
                                % (d["kind"], d["id"], d["reply_to"], d["correlation_id"], d["t"]))
            elif isinstance(got[0], dict) and got[0].get("status") != want:
                problems.append("dup-reply: %s duplicate of %s got %s/%s, expected %s" % (
                    d["kind"], d["id"], got[0].get("status"), got[0].get("reason"), want))
        return problems

    def check_failures(self):
        """The stand-in fails only when its prompt says so, and the jobs here never ask it to:
        a valid job may end completed or cancelled, or failed/delivery_limit after attempts
        that faults cut short (allowed, listed as a note). Any other failure is the fleet's
        doing (e.g. a run the watchdog killed, reported as the generator's own failure)."""
        problems, notes = [], []
        for job, body in sorted(self.observed.results.items()):
            if job.startswith("fx") or body.get("status") != "failed":  # fx: broken on purpose (fault f)
                continue
            limit = body.get("reason") == "delivery_limit"
            (notes if limit else problems).append("%s: job %s failed/%s on %s: %s" % (
                "note" if limit else "unexpected-failure", job, body.get("reason"), body.get("worker"), body.get("message")))
        return problems, notes

    def gpu_seconds_lost(self, end_of_run):
        """Seconds of stand-in runs that did not produce their job's result: every run but, per
        job, the last one that ended before its result was received. Attributed to the latest
        fault whose window (plus two leases) holds the run's end."""
        notes, runs = [], history_check.read_runs(self.standin_path, [])
        received = {}
        for line in open(self.messages_path):
            m = json.loads(line)
            if m.get("channel") == "results" and isinstance(m.get("body"), dict):
                received.setdefault(m["body"].get("id"), m["t"])
        by_job = {}
        for r in runs:
            by_job.setdefault(r.job, []).append(r)
        lost, total, by_class = [], 0.0, {}
        for job, rs in by_job.items():
            t = received.get(job)
            done = [r for r in rs if r.end is not None and t is not None and r.end <= t]
            producer = max(done, key=lambda r: r.end) if done else None
            for r in rs:
                if r is producer:
                    continue
                end = r.end if r.end is not None else end_of_run
                total += end - r.start
                hit = [f for f in self.faults if f["t0"] <= end <= f["t1"] + 2 * self.a.lease]
                cause = max(hit, key=lambda f: f["t0"])["class"] if hit else "none"
                by_class[cause] = by_class.get(cause, 0.0) + end - r.start
                lost.append({"job": job, "pid": r.pid, "start": r.start, "end": r.end, "seconds": round(end - r.start, 3),
                             "fault": cause})
        return round(total, 2), {k: round(v, 2) for k, v in by_class.items()}, lost

    def judge(self, unanswered, stops):
        files = {k: os.path.join(self.out, k + ".jsonl") for k in ("submitted", "cancels")}
        for f in self.files.values():
            f.flush()
        check = subprocess.run([PY, os.path.join(BENCH, "history_check.py"), "--standin", self.standin_path,
                                "--messages", self.messages_path, "--submitted", files["submitted"],
                                "--cancels", files["cancels"], "--expect-idle"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with open(os.path.join(self.out, "check.txt"), "w") as f:
            f.write(check.stdout)
        violations = {name: [l for l in check.stdout.splitlines() if l.startswith(name + ":")] for name in history_check.INVARIANTS}
        dup = self.check_duplicates()
        failures, failure_notes = self.check_failures()
        lost, lost_by_class, lost_runs = self.gpu_seconds_lost(time.time())
        counts = {c: sum(1 for f in self.faults if f["class"] == c) for c in CLASSES}
        errors = [f for f in self.faults if "error" in f["detail"]]
        results = sum(1 for line in open(self.messages_path) if '"channel": "results"' in line)
        summary = {"seed": self.a.seed, "workers": self.a.workers, "lease_s": self.a.lease, "duration_s": self.a.duration,
                   "prefix": self.prefix, "out": self.out, "genworker": self.binary, "faults_by_class": counts,
                   "window_s": self.a.window, "fault_errors": errors, "jobs_submitted": len(self.submitted),
                   "results": results, "unanswered_at_stop": unanswered, "worker_stops": stops,
                   "workers_exited_by_themselves": self.died, "recorder_restarts": self.recorder_gaps,
                   "violations": {k: len(v) for k, v in violations.items()}, "dup_reply": dup, "unexpected_failures": failures, "delivery_limit_failures": failure_notes,
                   "gpu_seconds_lost": lost, "gpu_seconds_lost_by_fault": lost_by_class, "lost_runs": lost_runs,
                   "checker_exit": check.returncode, "checker_last_line": (check.stdout.strip().splitlines() or [""])[-1],
                   "wall_s": round(time.time() - self.t0), "faults": self.faults}
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
        print(check.stdout, end="")
        for line in dup + failures + failure_notes:
            print(line)
        print("\n%-34s %s" % ("fault class", "injected"))
        for c, name in CLASSES.items():
            if c in self.a.faults:
                print("  %-6s %-25s %3d" % (c, name, counts[c]))
        if errors:
            print("  faults that could not be injected: %d (summary.json: fault_errors)" % len(errors))
        print("%-34s %d" % ("jobs submitted (ids)", len(self.submitted)))
        print("%-34s %d" % ("results on the results queue", results))
        print("%-34s %d" % ("ids unanswered when stopping", len(unanswered)))
        print("violations:  " + "  ".join("%s=%d" % (k, len(v)) for k, v in violations.items()) +
              "  dup-reply=%d  unexpected-failure=%d" % (len(dup), len(failures)))
        print("%-34s %.1f  (by fault: %s)" % ("GPU-seconds lost", lost, ", ".join(
            "%s %.1f" % kv for kv in sorted(lost_by_class.items())) or "-"))
        print("%-34s %d s; everything in %s" % ("wall time", time.time() - self.t0, self.out))
        return check.returncode or (1 if dup or failures else 0)

    def cleanup(self):
        for w in self.workers:
            if w.alive():
                w.group(signal.SIGCONT)
                w.proc.kill()
                w.proc.wait()
        if self.recorder is not None and self.recorder.poll() is None:
            self.recorder.kill()
            self.recorder.wait()
        if self.net is not None:
            self.net.close()
        if self.node_down is not None:
            subprocess.run([CLUSTER, "start-node", str(self.node_down)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.publisher is not None:
            try:  # this run's queues and streams: the history is on disk now
                ch = self.publisher.channel
                for q in self.reply_queues + [self.full_queue] + [self.prefix + "." + s for s in (
                        "jobs", "results", "dead", "unrouted", "ledger", "cancel.log")]:
                    ch.queue_delete(q)
                if "h" in self.a.faults:
                    self.ctl("delete_user", FORGER[0])
            except Exception as e:
                self.say("cleanup: %r" % e)
            self.publisher.close()


def genworker_binary(path):
    """--genworker, else <repo>/.build/release/genworker, built when missing; its watchdog
    must sit beside it (the worker looks for it there)."""
    default = os.path.join(ROOT, ".build", "release", "genworker")
    path = path or default
    if not os.path.exists(path) and path == default:
        for product in ("genworker", "genworker-watchdog"):
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)
    for p in (path, os.path.join(os.path.dirname(path), "genworker-watchdog")):
        if not os.access(p, os.X_OK):
            sys.exit("chaos.py: %s is missing (build it, or pass --genworker)" % p)
    return os.path.abspath(path)


def cluster():
    """The cluster's AMQP ports and URLs; started when it is not up."""
    if subprocess.run([CLUSTER, "status"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run([CLUSTER, "start"], check=True)
    urls = subprocess.run([CLUSTER, "urls"], stdout=subprocess.PIPE, text=True, check=True).stdout.strip().split(",")
    return [int(u.rstrip("/").rsplit(":", 1)[1]) for u in urls], urls


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--duration", type=float, default=240, help="seconds of submitting and faults (default 240)")
    p.add_argument("--jobs", type=int, default=300, help="background jobs over the run (faults add their own)")
    p.add_argument("--workers", default="1,2,3,4", help="slots per worker, one number per worker")
    p.add_argument("--faults", default="all", help="comma-separated classes: %s, or all" % ",".join(CLASSES))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="directory for every log and the history (default: a new one under /tmp)")
    p.add_argument("--genworker", help="the genworker executable (default: <repo>/.build/release/genworker)")
    p.add_argument("--lease", type=float, default=10, help="jobs.lease_s of every worker")
    p.add_argument("--rounds", type=int, help="times the whole set of faults is injected (default: as fit the duration)")
    p.add_argument("--settle", type=float, default=120, help="seconds to wait for the last results")
    p.add_argument("--window", type=float, default=120,
                   help="topology.ledger_retention_h of every worker, in seconds (fault class i outlasts it)")
    a = p.parse_args()
    a.workers = [int(x) for x in a.workers.split(",")]
    a.faults = list(CLASSES) if a.faults == "all" else a.faults.split(",")
    unknown = [c for c in a.faults if c not in CLASSES]
    if unknown:
        p.error("unknown fault class(es) %s%s" % (unknown, " (i is not feasible: see --help)" if "i" in unknown else ""))
    # About three minutes of faults per round (partitions and stops last one to two leases each).
    a.rounds = a.rounds or max(1, int(a.duration * 0.8 / (180 * len(a.faults) / len(CLASSES))))
    a.out = os.path.abspath(a.out or "/tmp/chaos-%s" % time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(a.out, exist_ok=True)
    binary = genworker_binary(a.genworker)
    ports, urls = cluster()
    h = Chaos(a, binary, ports, urls)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        code = h.run()
    except KeyboardInterrupt:
        h.say("interrupted")
        code = 2
    except Exception as e:
        h.say("harness failed: %r" % e)
        raise
    finally:
        h.cleanup()
    sys.exit(code)


if __name__ == "__main__":
    main()
