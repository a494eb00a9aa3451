#!/usr/bin/env python3
"""Checks a fleet's recorded history against genworker's promises, Jepsen style: it does not
trust what the workers say, only what was observed from outside.

    history_check.py --standin FILE --messages FILE [--submitted FILE] [--cancels FILE]
                     [--cancel-bound S] [--cancel-race S] [--expect-idle]

--standin   the stand-in generator's ledger (GENWORKER_STANDIN_LEDGER): "start|end ID PID TIME"
--messages  bench/history_record.py's JSON lines (results, events, reply:<q>, ledger, gap, meta)
--submitted JSON lines {"id", "t", "reply_to"?, "correlation_id"?}: what was published
--cancels   JSON lines {"id", "t"}: when each cancel was published

Invariants (docs/protocol.md):
  overlap   two runs of one job never execute at the same moment
  duplicate at most one terminal result per id on results, on events, and per (id,
            correlation_id) on each reply queue. Copies with the same body are one result
            delivered again (a publish whose confirm was lost is published again: AMQP
            confirms are at-least-once); they are counted as `republished`, not as a violation,
            and clients drop them by `message_id`. Two different bodies are a duplicate.
  missing   every submitted id has a terminal result on results (and on its reply_to,
            when the recorder listened to that queue)
  leftover  every run ended (--expect-idle: no generator may be left alive)
  cancel    a run live at a cancel, or started after the cancel of a job submitted before it,
            ends within --cancel-bound of it, and the job's result is "cancelled", unless the
            result was published before the cancel
  phantom   a "completed" result comes after a run of that job ended
Every violation is one line; exit 1 if there is any. All times are the host's time.time():
the recorder, the stand-in and the submitter must run on one host.
"""
import argparse
import json
import sys
from collections import defaultdict, namedtuple

TERMINAL = ("completed", "failed", "cancelled")
INVARIANTS = ("overlap", "duplicate", "missing", "leftover", "cancel", "phantom")
Run = namedtuple("Run", "job pid start end")  # end None: no end line (still running, or witness lost)
Result = namedtuple("Result", "channel job event t correlation_id body")


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_runs(path, notes):
    """Pairs each start with the next end of the same id and pid, in time order: a warm runner
    runs many jobs in one pid, possibly the same id twice."""
    events = defaultdict(list)
    with open(path) as f:
        for n, line in enumerate(f):
            parts = line.split()
            if len(parts) != 4 or parts[0] not in ("start", "end"):
                notes.append("note: standin line %d malformed: %r" % (n + 1, line))
                continue
            events[(parts[1], int(parts[2]))].append((float(parts[3]), n, parts[0]))
    runs = []
    for (job, pid), evs in events.items():
        started = None
        for t, _, kind in sorted(evs):
            if kind == "start":
                if started is not None:  # a second start in the same pid before an end
                    runs.append(Run(job, pid, started, None))
                started = t
            elif started is not None:
                runs.append(Run(job, pid, started, t))
                started = None
            else:  # possible: killed between starting its witness and writing "start"
                notes.append("note: end of %s pid %d at %.3f has no start" % (job, pid, t))
        if started is not None:
            runs.append(Run(job, pid, started, None))
    return runs


def terminal(msg):
    """The terminal result a recorded message carries, or None."""
    channel, body, key = msg.get("channel", ""), msg.get("body"), msg.get("routing_key") or ""
    if not (channel in ("results", "events") or channel.startswith("reply:")):
        return None
    body = body if isinstance(body, dict) else {}
    prefix, _, suffix = key.rpartition(".")
    if channel == "events":
        event = suffix  # the routing key <id>.<event> says what the event is
    else:
        event = body.get("event") or suffix
    if event not in TERMINAL:
        return None
    job = body.get("id") or msg.get("message_id") or prefix
    return Result(channel, job, event, float(msg["t"]), msg.get("correlation_id"), json.dumps(body, sort_keys=True))


def fmt(t):
    return "still running" if t is None else "%.3f" % t


def check(runs, messages, submitted, cancels, bound, race, expect_idle):
    """Returns (violations as (invariant, line), summary counts)."""
    out = []
    by_job = defaultdict(list)
    for r in runs:
        by_job[r.job].append(r)

    # overlap: strict intersection of [start, end); a run with no end lasts to the end of time.
    inf = float("inf")
    for job, rs in sorted(by_job.items()):
        rs.sort(key=lambda r: r.start)
        for i, a in enumerate(rs):
            for b in rs[i + 1:]:
                if b.start < (inf if a.end is None else a.end) and a.start < (inf if b.end is None else b.end):
                    out.append(("overlap", "overlap: job %s run pid %d [%.3f, %s] and run pid %d [%.3f, %s] execute at once"
                                % (job, a.pid, a.start, fmt(a.end), b.pid, b.start, fmt(b.end))))

    results = sorted(filter(None, map(terminal, messages)), key=lambda r: r.t)
    # duplicate
    seen = defaultdict(list)
    for r in results:
        key = (r.channel, r.job, r.correlation_id if r.channel.startswith("reply:") else None)
        seen[key].append(r)
    republished = 0
    for (channel, job, corr), rs in sorted(seen.items(), key=lambda kv: str(kv[0])):
        distinct = len({r.body for r in rs})
        republished += len(rs) - distinct
        if distinct > 1:
            out.append(("duplicate", "duplicate: job %s has %d terminal results on %s%s: %s" % (
                job, len(rs), channel, "" if corr is None else " (correlation_id %s)" % corr,
                ", ".join("%s at %.3f" % (r.event, r.t) for r in rs))))
    first = {}  # the job's result: its first on the results queue
    for r in results:
        if r.channel == "results":
            first.setdefault(r.job, r)

    # missing
    listened = set()
    for m in messages:
        if m.get("channel") == "meta":
            listened.update(m.get("reply_queues") or [])
    replied = {(r.channel[len("reply:"):], r.job, r.correlation_id) for r in results if r.channel.startswith("reply:")}
    for s in submitted:
        if s["id"] not in first:
            out.append(("missing", "missing: job %s submitted at %.3f has no terminal result on results" % (s["id"], s["t"])))
        q = s.get("reply_to")
        if q in listened and not any(rq == q and job == s["id"] and (s.get("correlation_id") in (None, corr))
                                     for rq, job, corr in replied):
            out.append(("missing", "missing: job %s submitted at %.3f has no terminal result on its reply_to %s"
                        % (s["id"], s["t"], q)))

    # leftover
    if expect_idle:
        for r in runs:
            if r.end is None:
                out.append(("leftover", "leftover: job %s run pid %d started at %.3f never ended" % (r.job, r.pid, r.start)))

    # cancel
    submitted_at = {}
    for s in submitted:
        submitted_at[s["id"]] = min(s["t"], submitted_at.get(s["id"], inf))
    latencies = []
    for c in sorted(cancels, key=lambda c: c["t"]):
        job, t = c["id"], c["t"]
        result = first.get(job)
        if result is not None and result.t < t:
            continue  # it had ended: the cancel does nothing
        # Live at the cancel, or started after it although the job was already queued
        # (then it must be stopped as promptly: the job stays cancelled).
        hit = [r for r in by_job.get(job, []) if (r.end is None or r.end > t)
               and (r.start < t or submitted_at.get(job, inf) < t)]
        for r in hit:
            if r.end is None or r.end > t + bound:
                out.append(("cancel", "cancel: job %s cancelled at %.3f: run pid %d [%.3f, %s] %s (bound %.1f s)" % (
                    job, t, r.pid, r.start, fmt(r.end),
                    "never ended" if r.end is None else "ended %.3f s after the cancel" % (r.end - t), bound)))
            elif r.end is not None:
                latencies.append(r.end - t)
        # A run that ended within `race` of the cancel may have finished before any worker
        # heard of the cancel: its own result (completed/failed) is then right too.
        late = [r for r in hit if r.end is None or r.end > t + race]
        if late and result is not None and result.event != "cancelled":
            out.append(("cancel", "cancel: job %s cancelled at %.3f while run pid %d [%.3f, %s] was live, but its result"
                        " is %s (received at %.3f)" % (job, t, late[0].pid, late[0].start, fmt(late[0].end), result.event, result.t)))

    # phantom
    for r in results:
        if r.event == "completed" and not any(run.end is not None and run.end < r.t for run in by_job.get(r.job, [])):
            out.append(("phantom", "phantom: job %s completed on %s at %.3f, but no run of it had ended by then"
                        % (r.job, r.channel, r.t)))

    jobs = set(by_job) | {r.job for r in results} | {s["id"] for s in submitted}
    counts = {"jobs": len(jobs), "runs": len(runs), "results": sum(1 for r in results if r.channel == "results"),
              "republished": republished,
              "cancel_latency_max": max(latencies, default=None)}
    return out, counts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--standin", required=True)
    p.add_argument("--messages", required=True)
    p.add_argument("--submitted")
    p.add_argument("--cancels")
    p.add_argument("--cancel-bound", type=float, default=10.0, help="seconds a cancelled run may take to end")
    p.add_argument("--cancel-race", type=float, default=0.25,
                   help="a run ending this soon after a cancel may keep its own result")
    p.add_argument("--expect-idle", action="store_true", help="no generator may be left running")
    a = p.parse_args(argv)
    notes = []
    runs = read_runs(a.standin, notes)
    messages = read_jsonl(a.messages)
    gaps = [m for m in messages if m.get("channel") == "gap"]
    if gaps:  # events lost in a gap can hide a duplicate there, never invent one
        notes.append("note: %d gap(s) in the events recording, from %s" % (len(gaps), ", ".join("%.3f" % g["t"] for g in gaps)))
    violations, counts = check(runs, messages, read_jsonl(a.submitted) if a.submitted else [],
                               read_jsonl(a.cancels) if a.cancels else [], a.cancel_bound, a.cancel_race, a.expect_idle)
    for line in notes:
        print(line)
    for _, line in violations:
        print(line)
    if counts["cancel_latency_max"] is not None:
        print("note: slowest cancelled run ended %.3f s after its cancel" % counts["cancel_latency_max"])
    tally = {name: sum(1 for v in violations if v[0] == name) for name in INVARIANTS}
    print("history: %d jobs, %d runs, %d results (%d republished copies); violations: %s" % (
        counts["jobs"], counts["runs"], counts["results"], counts["republished"],
        " ".join("%s=%d" % kv for kv in tally.items())))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
