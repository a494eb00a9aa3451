"""What the benchmark and soak scripts share: a test topology's names, connecting to any
node with pika, publishing that survives a broker restart, and draining the results queue."""
import json
import time

import pika

# Every topology.* name a script gives its own prefix, so runs never share queues.
TOPOLOGY = [("jobs_exchange", "jobs"), ("jobs_queue", "jobs"), ("cancel_exchange", "cancel"),
            ("cancel_stream", "cancel.log"), ("events_exchange", "events"), ("results_queue", "results"),
            ("dead_exchange", "dead"), ("dead_queue", "dead"), ("unrouted_exchange", "unrouted"),
            ("unrouted_queue", "unrouted"), ("ledger_stream", "ledger")]


def topology_yaml(prefix, without=()):
    """The `topology:` section of a worker config with every name under `prefix`."""
    return "topology:\n" + "".join("  %s: %s.%s\n" % (key, prefix, suffix) for key, suffix in TOPOLOGY if key not in without)


def connect(urls, confirm=False):
    """A connection and channel to the first node of `urls` that answers; waits until one does."""
    while True:
        for url in urls:
            try:
                connection = pika.BlockingConnection(pika.URLParameters(url + "%2f?heartbeat=0"))
                channel = connection.channel()
                if confirm:
                    channel.confirm_delivery()
                return connection, channel
            except pika.exceptions.AMQPError:
                continue
        time.sleep(0.5)


class Publisher:
    """Persistent JSON messages with confirms; reconnects (to any node) when the broker goes away."""

    def __init__(self, urls):
        self.urls = urls
        self.connection, self.channel = connect(urls, confirm=True)

    def publish(self, exchange, key, body):
        for _ in range(100):
            try:
                self.channel.basic_publish(exchange, key, body,
                                           pika.BasicProperties(content_type="application/json", delivery_mode=2))
                return
            except (pika.exceptions.AMQPError, OSError):
                self.connection, self.channel = connect(self.urls, confirm=True)
        raise RuntimeError("cannot publish")


class Results:
    """Reads the results queue into {id: ["status/reason", ...]}; survives broker restarts."""

    def __init__(self, urls, queue):
        self.urls, self.queue, self.by_id, self.channel = urls, queue, {}, None

    def drain(self):
        try:
            if self.channel is None:
                self.connection, self.channel = connect(self.urls)
            while True:
                method, _, body = self.channel.basic_get(self.queue, auto_ack=True)
                if method is None:
                    return
                event = json.loads(body)
                self.by_id.setdefault(event["id"], []).append(event["status"] + "/" + str(event.get("reason")))
        except (pika.exceptions.AMQPError, OSError):
            self.channel = None


def run_file(out, job, suffix):
    """Where the stand-in wrote <job>.mp4<suffix>: a worker's run directory
    (<out>/.runs/<job>.<attempt>/, newest attempt first), else <out> itself (Celery, a bare run)."""
    import glob
    import os
    runs = glob.glob(os.path.join(out, ".runs", glob.escape(job) + ".*", job + ".mp4" + suffix))
    runs.sort(key=lambda p: int(os.path.basename(os.path.dirname(p)).rsplit(".", 1)[1]), reverse=True)
    return (runs or [os.path.join(out, job + ".mp4" + suffix)])[0]

