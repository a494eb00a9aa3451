#!/usr/bin/env python3
"""genworker's warm runner: one long-lived process per GPU slot that runs Wan2.2's own
generate.py for every job, with its pipelines kept loaded between jobs.

    warm_runner.py REPO IDLE_S          (started by the worker; never by hand)

For each job the worker writes one JSON line on fd 3: {"id": ..., "argv": [generate.py's
options]}. The runner sets sys.argv, calls generate.py's own _parse_args() and generate(args):
prompt extension, seeding, saving, the log lines and the tqdm bars stay upstream's. What
changes: the pipeline constructors (wan.WanT2V, WanI2V, WanTI2V, WanS2V, WanAnimate) are
memoized, so the next job with the same constructor arguments reuses the pipeline; a job that
needs another one drops the cached one first (two would not fit on the GPU).

Reports go to the worker on fd 4, one JSON line each, never through stdout/stderr (those carry
the generator's log): {"event": "ready"}, then per job {"id", "event": "done", "code"} or
{"id", "event": "stopped"}, with the pipeline's name, build seconds and whether it was reused.

SIGUSR1 asks the running job to stop: it raises JobStopped in the main thread at the next
Python bytecode, the job's partial output is removed, CUDA's cache released, and "stopped" is
reported; the runner stays warm. A runner that does not report within the worker's grace is
killed with its whole process tree. After IDLE_S seconds without a job the runner exits
(frees the GPU); an end of fd 3 (the worker recycling it) ends it too.
"""
import gc
import json
import os
import select
import signal
import sys
import time
import traceback

PIPELINES = ("WanT2V", "WanI2V", "WanTI2V", "WanS2V", "WanAnimate")


class JobStopped(BaseException):
    """Raised by SIGUSR1 in the main thread; BaseException so upstream's `except Exception` keeps out."""


def empty_cache():
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch, "cuda", None) is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def option(argv, name):
    for i, arg in enumerate(argv[:-1]):
        if arg == name:
            return argv[i + 1]
    return None


def main():
    repo, idle_s = sys.argv[1], float(sys.argv[2])
    sys.path.insert(0, repo)
    os.chdir(repo)
    commands = os.fdopen(3, "r")
    reports = os.fdopen(4, "w")

    def report(**fields):
        reports.write(json.dumps(fields) + "\n")
        reports.flush()

    import generate as upstream  # generate.py's `if __name__ == "__main__"` keeps it from running
    import wan

    cache = {"key": None, "pipe": None}
    build = {}

    def memoize(name, constructor):
        def make(*args, **kwargs):
            key = (name, repr(args), repr(sorted(kwargs.items())))
            if cache["key"] == key:
                build.update(pipeline=name, build_s=0.0, reused=True)
                return cache["pipe"]
            if cache["pipe"] is not None:
                cache["key"] = cache["pipe"] = None
                gc.collect()
                empty_cache()
            started = time.monotonic()
            pipe = constructor(*args, **kwargs)
            cache["key"], cache["pipe"] = key, pipe
            build.update(pipeline=name, build_s=round(time.monotonic() - started, 3), reused=False)
            return pipe
        return make

    for name in PIPELINES:
        if hasattr(wan, name):
            setattr(wan, name, memoize(name, getattr(wan, name)))

    running = {"id": None}

    def on_stop(signum, frame):
        if running["id"] is not None:
            raise JobStopped()

    signal.signal(signal.SIGUSR1, on_stop)
    report(event="ready", pid=os.getpid())
    while True:
        ready, _, _ = select.select([commands], [], [], idle_s if idle_s > 0 else None)
        if not ready:
            return 0  # idle: give the GPU back
        line = commands.readline()
        if not line:
            return 0  # the worker closed the pipe: recycled, or shutting down
        job = json.loads(line)
        build.clear()
        outcome = {"event": "done", "code": 1}
        try:
            running["id"] = job["id"]
            sys.argv = ["generate.py"] + job["argv"]
            upstream.generate(upstream._parse_args())
            outcome = {"event": "done", "code": 0}
        except JobStopped:
            outcome = {"event": "stopped"}
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            outcome = {"event": "done", "code": code}
        except Exception:
            traceback.print_exc()
        finally:
            running["id"] = None
        sys.stdout.flush()
        sys.stderr.flush()
        if outcome["event"] == "stopped":
            save = option(job["argv"], "--save_file")
            if save and os.path.exists(save):
                os.unlink(save)
            gc.collect()
            empty_cache()
        report(id=job["id"], **outcome, **build)


if __name__ == "__main__":
    sys.exit(main())
