#!/usr/bin/env python3
"""A genworker client in Python with pika: submit a job, follow its progress, get its
result, cancel it. Only docs/protocol.md is needed to write one like it.

    python3 genworker_client.py --url amqp://guest:guest@127.0.0.1:5679/%2f submit \
        --task t2v-A14B --param prompt="A red fox" --param size=1280*720 --wait
    python3 genworker_client.py cancel JOB_ID

As a library: GenworkerClient(url).submit(...), .wait(job_id, on_event), .cancel(job_id).
"""
import argparse
import json
import sys
import time
import uuid

import pika


class GenworkerClient:
    def __init__(self, url, prefix="genworker"):
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.jobs_exchange = prefix + ".jobs"
        self.cancel_exchange = prefix + ".cancel"
        self.events_exchange = prefix + ".events"
        self._watch = {}

    def _follow(self, job_id):
        """Binds a private queue to the job's events before the job is published, so nothing is missed."""
        queue = self.channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.channel.queue_bind(queue, self.events_exchange, routing_key=job_id + ".*")
        self._watch[job_id] = queue

    def submit(self, task, params, job_id=None, timeout_s=None, follow=True, extra=None):
        """`extra`: more top-level fields (protocol 1.1: "output", "webhook")."""
        job_id = job_id or uuid.uuid4().hex
        job = dict({"id": job_id, "task": task, "params": params}, **(extra or {}))
        if timeout_s:
            job["timeout_s"] = timeout_s
        if follow:
            self._follow(job_id)
        # mandatory + confirms: raises if the broker could not route or store the job.
        self.channel.basic_publish(
            self.jobs_exchange, task, json.dumps(job).encode(),
            pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=job_id,
                                 timestamp=int(time.time())),
            mandatory=True)
        return job_id

    def cancel(self, job_id):
        self.channel.basic_publish(self.cancel_exchange, "", json.dumps({"id": job_id}).encode(),
                                   pika.BasicProperties(content_type="application/json", delivery_mode=2))

    def wait(self, job_id, on_event=None, timeout=None):
        """Calls on_event(event) for each event of the job; returns the terminal one."""
        queue = self._watch.get(job_id)
        if queue is None:
            raise ValueError("submit with follow=True first")
        deadline = time.time() + timeout if timeout else None
        for method, _, body in self.channel.consume(queue, auto_ack=True, inactivity_timeout=1):
            if method is None:
                if deadline and time.time() > deadline:
                    raise TimeoutError("no result for %s" % job_id)
                continue
            event = json.loads(body)
            if on_event:
                on_event(event)
            if event["event"] in ("completed", "failed", "cancelled"):
                self.channel.cancel()
                return event

    def close(self):
        self.connection.close()


def show(event):
    if event["event"] == "progress":
        p = event.get("progress", {})
        sys.stderr.write("\r%-10s %s %3d%% %d/%d eta %ss   " % (
            p.get("phase", ""), event.get("step", ""), p.get("percent", 0), p.get("step", 0), p.get("total", 0),
            p.get("eta_s", "?")))
        sys.stderr.flush()
    else:
        sys.stderr.write("\n")
        print(json.dumps(event), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2f")
    parser.add_argument("--prefix", default="genworker", help="topology name prefix (genworker.jobs, ...)")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit")
    s.add_argument("--task", required=True)
    s.add_argument("--param", action="append", default=[], help="key=value (value parsed as JSON when it is JSON)")
    s.add_argument("--id")
    s.add_argument("--timeout-s", type=int)
    s.add_argument("--wait", action="store_true")
    s.add_argument("--cancel-after", type=float, help="cancel the job this many seconds after it started")
    c = sub.add_parser("cancel")
    c.add_argument("id")
    args = parser.parse_args()

    client = GenworkerClient(args.url, args.prefix)
    if args.command == "cancel":
        client.cancel(args.id)
        print("cancel sent for", args.id)
        return 0
    params = {}
    for item in args.param:
        key, _, raw = item.partition("=")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    job_id = client.submit(args.task, params, job_id=args.id, timeout_s=args.timeout_s)
    print("submitted", job_id, flush=True)
    if not (args.wait or args.cancel_after):
        return 0

    def on_event(event):
        show(event)
        if args.cancel_after and event["event"] == "started":
            time.sleep(args.cancel_after)
            client.cancel(job_id)

    result = client.wait(job_id, on_event)
    client.close()
    return 0 if result["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
