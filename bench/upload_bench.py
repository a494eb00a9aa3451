#!/usr/bin/env python3
"""Upload throughput to the private S3 server (scripts/s3.sh): `genworker transfer` (the
worker's upload step, as the worker runs it) beside `aws s3 cp` (awscli from the s3.sh venv),
the same file, the same SeaweedFS, alternating. Not a test: a benchmark.

    python3 bench/upload_bench.py [BINARY] [MIB ...]     default .build/dist/genworker, 200 and 10 MiB

Prints, per size, each tool's wall times (5 runs, median first) and MiB/s at the median.
genworker's multipart settings are the defaults (threshold 64 MiB, parts of 16 MiB); awscli's
are its own (8 MiB threshold and parts, 10 concurrent requests)."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "dist", "genworker")
sizes = [int(x) for x in sys.argv[2:]] or [200, 10]
env_lines = subprocess.run([os.path.join(ROOT, "scripts", "s3.sh"), "env"], capture_output=True, text=True, check=True).stdout
env = dict(os.environ)
for line in env_lines.splitlines():
    line = line.replace("export ", "").strip()
    if "=" in line:
        k, v = line.split("=", 1)
        env[k] = v.strip("'\"")
endpoint = env["GENWORKER_S3_URL"]
aws = os.path.join(ROOT, ".run", "venv-s3", "bin", "aws")
work = tempfile.mkdtemp(prefix="upload-bench-")
RUNS = 5


def timed(argv, **kw):
    t = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, **kw)
    return time.monotonic() - t


out = {}
for mib in sizes:
    path = os.path.join(work, "video-%d.mp4" % mib)
    with open(path, "wb") as f:
        f.write(os.urandom(mib << 20))
    plan_path = os.path.join(work, "plan.json")
    times = {"genworker transfer": [], "aws s3 cp": []}
    for run in range(RUNS):
        key = "bench/%s/%d.mp4" % (uuid.uuid4().hex[:8], run)
        plan = {"job": "bench", "fetches": [], "upload": {"file": path, "target": {"store": {"key": key}}},
                "store": {"endpoint": endpoint, "region": "us-east-1", "bucket": "genworker-test", "pathStyle": True, "profile": "",
                          "attempts": 5, "multipartThresholdBytes": 64 << 20, "partSizeBytes": 16 << 20, "url": "presigned",
                          "urlExpiresSeconds": 3600, "publicBaseURL": ""},
                "egress": {"allowHTTP": False, "allowNetworks": [], "maxRedirects": 5, "refusedEndpoints": []},
                "maxInputBytes": 1 << 30, "attempts": 5}
        with open(plan_path, "w") as f:
            json.dump(plan, f)
        times["genworker transfer"].append(
            timed([binary, "transfer", "--plan", plan_path, "--report", os.path.join(work, "report.json")]))
        times["aws s3 cp"].append(timed([aws, "--endpoint-url", endpoint, "s3", "cp", path, "s3://genworker-test/" + key + ".aws"]))
    for tool, ts in times.items():
        median = statistics.median(ts)
        out["%d MiB, %s" % (mib, tool)] = {"median_s": round(median, 3), "MiB_per_s": round(mib / median, 1),
                                           "runs_s": [round(t, 3) for t in ts]}
    os.unlink(path)
print(json.dumps(out, indent=1))
