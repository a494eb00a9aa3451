#!/usr/bin/env python3
"""Records what a fleet says from outside, for bench/history_check.py: every terminal result
on the results queue, every event, every reply, and at the end the whole ledger stream.

    history_record.py --out FILE [--url URL ...] [--results-queue Q] [--events-exchange X]
                      [--ledger-stream S] [--reply-queue Q ...] [--seconds N] [--retry-seconds N]

Runs until SIGTERM/SIGINT or --seconds, then reads the ledger from its first offset. Writes
JSON lines: {"channel": "results"|"events"|"reply:<q>", "t", "routing_key", "message_id",
"correlation_id", "body", "redelivered"}, {"channel": "ledger", "offset", "exchange", "user_id",
"body"}, one {"channel": "meta", ...} first, and {"channel": "gap", "t", "until"} for each time
the events went unrecorded while reconnecting.

It must be the only consumer of the results queue and of the reply queues (it acks what it
takes, so nobody else sees it); reply queues must not be exclusive to their submitter.
"""
import argparse
import collections
import json
import signal
import sys
import time

import pika
from pika.exceptions import AMQPChannelError, AMQPConnectionError


def parse(body):
    text = body.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def warn(message):
    print("history_record: " + message, file=sys.stderr, flush=True)


class Recorder:
    def __init__(self, a):
        self.a, self.conn, self.stop = a, None, False
        self.out = open(a.out, "w")
        self.next_url = 0
        # Written, then acked; an ack lost with the connection brings the message back
        # (redelivered), and it must not be written twice: that would pass for a duplicate result.
        self.written = collections.Counter()

    def write(self, record):
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()  # before the ack: an acked result is always on disk

    def open(self, deadline):
        """A connection to one of the URLs, trying them in turn until the deadline."""
        while True:
            url = self.a.url[self.next_url % len(self.a.url)]
            self.next_url += 1
            try:
                return pika.BlockingConnection(pika.URLParameters(url))
            except AMQPConnectionError as e:
                if time.time() > deadline:
                    raise
                warn("cannot connect to %s (%r); retrying" % (url, e))
                time.sleep(0.5)

    def subscribe(self, deadline):
        """Connects and consumes; a connection that fails halfway through (a node stopping
        under it) is opened again, on the next URL, until the deadline."""
        while True:
            try:
                self.conn = self.open(deadline)
                ch = self.conn.channel()
                ch.basic_qos(prefetch_count=100)
                events = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
                ch.queue_bind(events, self.a.events_exchange, "#")
                ch.basic_consume(self.a.results_queue, self.on_message("results", ch))
                ch.basic_consume(events, self.on_message("events", ch))
                for q in self.a.reply_queue:
                    ch.basic_consume(q, self.on_message("reply:" + q, ch))
                return
            except AMQPConnectionError as e:
                self.close()
                if time.time() > deadline:
                    raise
                warn("subscribing failed halfway (%r); connecting again" % e)
                time.sleep(0.5)

    def on_message(self, name, ch):
        def handle(_ch, method, props, body):
            key = (name, body, props.message_id, props.correlation_id, method.routing_key)
            if method.redelivered and self.written[key] > 0:
                self.written[key] -= 1  # ours already: its ack was lost with the last connection
            else:
                self.write({"channel": name, "t": time.time(), "routing_key": method.routing_key,
                            "message_id": props.message_id, "correlation_id": props.correlation_id,
                            "body": parse(body), "redelivered": method.redelivered})
                self.written[key] += 1
            ch.basic_ack(method.delivery_tag)
        return handle

    def record(self):
        self.write({"channel": "meta", "t": time.time(), "results_queue": self.a.results_queue,
                    "events_exchange": self.a.events_exchange, "ledger_stream": self.a.ledger_stream,
                    "reply_queues": self.a.reply_queue})
        end = time.time() + self.a.seconds if self.a.seconds else float("inf")
        self.subscribe(time.time() + self.a.retry_seconds)
        while not self.stop and time.time() < end:
            try:
                self.conn.process_data_events(time_limit=0.5)
            except AMQPConnectionError as e:
                lost = time.time()
                warn("connection lost (%r); reconnecting: results and replies lose nothing (acked after"
                     " writing), events published meanwhile are lost (a gap line marks them)" % e)
                self.close()
                self.subscribe(lost + self.a.retry_seconds)
                self.write({"channel": "gap", "t": lost, "until": time.time(), "reason": repr(e)})
                warn("reconnected after %.1f s" % (time.time() - lost))
        self.close()  # what is prefetched and unacked goes back to its queue

    def close(self):
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except Exception:
            pass
        self.conn = None

    def read_ledger(self):
        """The whole stream from its first offset, until it is quiet for 2 s; written only once
        read in full, so a connection lost halfway starts it over without doubling lines."""
        deadline = time.time() + self.a.retry_seconds
        while True:
            lines = []
            try:
                conn = self.open(deadline)
                ch = conn.channel()
                ch.basic_qos(prefetch_count=1000)  # a stream consumer needs a prefetch, and manual acks
                for method, props, body in ch.consume(self.a.ledger_stream, arguments={"x-stream-offset": "first"},
                                                      inactivity_timeout=2):
                    if method is None:
                        break
                    lines.append({"channel": "ledger", "offset": (props.headers or {}).get("x-stream-offset"),
                                  "exchange": method.exchange, "user_id": props.user_id, "body": parse(body)})
                    ch.basic_ack(method.delivery_tag)
                conn.close()
            except AMQPConnectionError as e:
                if time.time() > deadline:
                    raise
                warn("ledger read lost its connection (%r); reading it again" % e)
                continue
            for line in lines:
                self.write(line)
            return len(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", action="append", help="AMQP URL; several: tried in turn (default amqp://guest:guest@127.0.0.1:5679/)")
    p.add_argument("--out", required=True)
    p.add_argument("--results-queue", default="genworker.results")
    p.add_argument("--events-exchange", default="genworker.events")
    p.add_argument("--ledger-stream", default="genworker.ledger")
    p.add_argument("--reply-queue", action="append", default=[])
    p.add_argument("--seconds", type=float, help="stop after this long (else at SIGTERM/SIGINT)")
    p.add_argument("--retry-seconds", type=float, default=120, help="give up reconnecting after this long")
    a = p.parse_args()
    a.url = a.url or ["amqp://guest:guest@127.0.0.1:5679/"]
    r = Recorder(a)

    def on_signal(signum, frame):
        r.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        r.record()
        n = r.read_ledger() if a.ledger_stream else 0
    except AMQPChannelError as e:  # a queue or exchange that does not exist: no use retrying
        warn("broker refused: %r" % e)
        return 2
    except AMQPConnectionError as e:
        warn("gave up on the broker: %r (the recording is incomplete)" % e)
        return 2
    warn("done: %d ledger messages" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
