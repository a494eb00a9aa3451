"""pika side of scripts/bench-amqp.sh: the same three measurements as Sources/amqp-bench."""
import json
import sys
import time

import pika

url = sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5679/%2f"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
body = b"x" * 256
props = pika.BasicProperties(content_type="application/json", delivery_mode=2)

conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.confirm_delivery()
queue = ch.queue_declare("", exclusive=True).method.queue

start = time.perf_counter()
for _ in range(count):
    ch.basic_publish("", queue, body, props)  # blocks until the broker's confirm
sync_rate = count / (time.perf_counter() - start)
ch.queue_purge(queue)

consumer = conn.channel()
latencies = []
gen = consumer.consume(queue, auto_ack=True, inactivity_timeout=5)
for _ in range(min(count, 2000)):
    t0 = time.perf_counter()
    consumer.basic_publish("", queue, body)
    method, _, _ = next(gen)
    assert method is not None, "no delivery within 5 s"
    latencies.append((time.perf_counter() - t0) * 1000)
latencies.sort()


def pct(p):
    return latencies[min(len(latencies) - 1, int(len(latencies) * p))]


print(json.dumps({"client": "pika %s (BlockingConnection)" % pika.__version__,
                  "confirmed_sync_per_s": round(sync_rate), "confirmed_pipelined_per_s": None,
                  "rtt_p50_ms": round(pct(0.5), 3), "rtt_p99_ms": round(pct(0.99), 3)}))
conn.close()
