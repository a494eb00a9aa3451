#!/usr/bin/env python3
"""A stand-in for Wan2.2's generate.py: the same command line, Wan-like logs, tqdm
progress on stderr, and a small real video made with ffmpeg. No GPU, no model.

Behaviour for tests and demos comes from directives inside the prompt:
  [[step_s=0.5]]        seconds per denoising step (default 0.02)
  [[exit=3]]            exit with this code after generating
  [[no_output]]         log a save error and exit 0 without a video (as generate.py does)
  [[ignore_sigterm]]    ignore SIGTERM (only SIGKILL stops it)
  [[signal=11]]         die of this signal halfway
  [[fail=gpu_oom]]      halfway, print Wan2.2's failure of that kind and exit 1 (gpu_oom, cuda_error, flash_attn, module);
                        GENWORKER_STANDIN_FAIL=KIND in its environment does the same for every job (a broken machine)
  [[grandchild]]        start a grandchild in its own session that ignores SIGTERM
  [[flood_mb=100]]      write this many MiB of log lines to stderr first
  [[record_sigterm]]    on SIGTERM, write the time to SAVE_FILE.sigterm, then exit 143 (benchmarks)
  [[noop]]              write an empty-ish video at once and exit (throughput benchmarks)
  [[ignore_stop]]       block SIGUSR1 while sampling (a warm runner stuck in a native call)
  [[video_mb=300]]      pad the video with this many MiB (uploads that take a while)
Building a pipeline (wan.WanT2V(...) etc., examples/standin/wan) takes GENWORKER_STANDIN_BUILD_S
seconds (default 0), as loading the weights does.
With GENWORKER_STANDIN_LEDGER set (env.set in the worker config), it appends "start ID PID TIME"
and "end ID PID TIME" lines to that file (the chaos soak checks no job ran twice at once). The end
line is written by a witness process that sees the generator go, however it goes (SIGKILL too).
It writes SAVE_FILE.argv.json (argv, environment, pid, start time) so tests can check what
it received.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

START = time.time()
DEFAULT_STEPS = {"t2v-A14B": 40, "i2v-A14B": 40, "ti2v-5B": 50, "s2v-14B": 40, "animate-14B": 20}
FPS = {"t2v-A14B": 16, "i2v-A14B": 16, "ti2v-5B": 24, "s2v-14B": 16, "animate-14B": 30}
SIZES = ["720*1280", "1280*720", "480*832", "832*480", "704*1280", "1280*704", "1024*704", "704*1024"]


def log(message):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % int((time.time() % 1) * 1000)
    print(f"[{stamp}] INFO: {message}", flush=True)


def _parse_args():
    p = argparse.ArgumentParser(description="Wan2.2 generate.py stand-in")
    p.add_argument("--task", default="t2v-A14B", choices=list(DEFAULT_STEPS))
    p.add_argument("--size", default="1280*720", choices=SIZES)
    for name in ["--ckpt_dir", "--save_file", "--prompt", "--image", "--audio", "--pose_video", "--src_root_path",
                 "--offload_model", "--sample_solver", "--prompt_extend_method", "--prompt_extend_model",
                 "--prompt_extend_target_lang", "--tts_prompt_audio", "--tts_prompt_text", "--tts_text"]:
        p.add_argument(name)
    for name in ["--frame_num", "--base_seed", "--sample_steps", "--ulysses_size", "--num_clip", "--infer_frames",
                 "--refert_num"]:
        p.add_argument(name, type=int)
    for name in ["--sample_shift", "--sample_guide_scale"]:
        p.add_argument(name, type=float)
    for name in ["--convert_model_dtype", "--t5_cpu", "--t5_fsdp", "--dit_fsdp", "--use_prompt_extend",
                 "--replace_flag", "--use_relighting_lora", "--enable_tts", "--start_from_ref"]:
        p.add_argument(name, action="store_true")
    return p.parse_args()


# Wan2.2's failures as it prints them (../shared/wan22-facts.md), for [[fail=KIND]].
FAILURES = {
    "gpu_oom": "Traceback (most recent call last):\n  File \"generate.py\", line 575, in generate\n"
               "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
               "79.25 GiB of which 1.19 GiB is free.\n",
    "cuda_error": "Traceback (most recent call last):\n  File \"wan/modules/model.py\", line 412, in forward\n"
                  "RuntimeError: CUDA error: an illegal memory access was encountered\n"
                  "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below "
                  "might be incorrect.\n",
    "flash_attn": "Traceback (most recent call last):\n  File \"wan/modules/attention.py\", line 112, in flash_attention\n"
                  "    assert FLASH_ATTN_2_AVAILABLE\nAssertionError\n",
    "module": "Traceback (most recent call last):\n  File \"generate.py\", line 12, in <module>\n"
              "ModuleNotFoundError: No module named 'flash_attn'\n",
}


def directive(prompt, name, default=None):
    m = re.search(r"\[\[" + name + r"(?:=([^\]]*))?\]\]", prompt or "")
    if not m:
        return default
    return m.group(1) if m.group(1) is not None else True


# The witness blocks on its stdin, whose write end only the generator holds: EOF means the
# run is over, whether generate() returned or the process died (SIGKILL included). It is the
# only writer of "end" lines, so each run gets exactly one. Its time is when it saw EOF: never
# before the run really ended, so an overlap can be overstated but never hidden.
WITNESS = """
import os, sys, time
sys.stdin.buffer.read()
t = time.time()
with open(os.environ["GENWORKER_STANDIN_LEDGER"], "a") as f:
    f.write("end %s %s %.6f\\n" % (sys.argv[1], sys.argv[2], t))
"""
_witness = None  # kept referenced: if its pipe were garbage-collected the witness would see EOF early


def ledger_start(args):
    """Starts this run's witness, then writes "start ID PID TIME" (in that order, so that no
    start can lack its end). Does nothing without GENWORKER_STANDIN_LEDGER."""
    global _witness
    path = os.environ.get("GENWORKER_STANDIN_LEDGER")
    if not (path and args.save_file):
        return
    job = os.path.basename(args.save_file).rsplit(".mp4", 1)[0]
    # No GENWORKER_RUN / GENWORKER_OWNER: the worker kills every process carrying them, and
    # the witness must outlive the generator. Its own session keeps it out of the group's signals.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENWORKER_") or k == "GENWORKER_STANDIN_LEDGER"}
    _witness = subprocess.Popen([sys.executable, "-c", WITNESS, job, str(os.getpid())], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True, env=env)
    # Only this process may hold the write end (ffmpeg, a grandchild would keep the witness waiting).
    os.set_inheritable(_witness.stdin.fileno(), False)
    with open(path, "a") as f:
        f.write("start %s %d %.6f\n" % (job, os.getpid(), time.time()))


def ledger_end():
    """generate() returned or raised (a warm runner goes on to its next job): close the pipe
    and wait until the witness has written the end line, so it is there when generate() returns."""
    global _witness
    witness, _witness = _witness, None
    if witness is not None:
        witness.stdin.close()
        try:
            witness.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # it still writes the line once it runs


def generate(args):
    """As Wan2.2's generate(args): builds the task's pipeline (wan.WanT2V, ...) and runs it.
    A warm runner calls it again and again in one process."""
    try:  # the start inside: a warm runner's stop (an exception at any bytecode) still ends the run
        ledger_start(args)
        _generate(args)
    finally:
        ledger_end()


def _generate(args):
    assert args.ckpt_dir is not None, "Please specify the checkpoint directory."
    prompt = args.prompt or ""
    if args.save_file:
        with open(args.save_file + ".argv.json", "w") as f:
            json.dump({"argv": sys.argv, "env": dict(os.environ), "pid": os.getpid(), "start": START}, f)
    flood = directive(prompt, "flood_mb")
    if flood:
        line = ("x" * 1023 + "\n").encode()
        for _ in range(int(flood) * 1024):
            sys.stderr.buffer.write(line)
        sys.stderr.flush()
    if directive(prompt, "noop") and args.save_file:
        with open(args.save_file, "wb") as f:
            f.write(b"\0" * 16)
        return
    if directive(prompt, "record_sigterm") and args.save_file:
        def on_term(signum, frame):
            with open(args.save_file + ".sigterm", "w") as f:
                f.write(repr(time.time()))
            os._exit(143)
        signal.signal(signal.SIGTERM, on_term)
    if directive(prompt, "ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if directive(prompt, "grandchild"):
        child = subprocess.Popen([sys.executable, "-c",
                                  "import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(3600)"],
                                 start_new_session=True)
        if args.save_file:
            with open(args.save_file + ".grandchild", "w") as f:
                f.write(str(child.pid))
    log(f"Generation job args: {args}")
    log(f"Generation model config: stand-in for {args.task}")
    if args.prompt:
        log(f"Input prompt: {args.prompt}")
    pipeline = {"t2v-A14B": "WanT2V", "i2v-A14B": "WanI2V", "ti2v-5B": "WanTI2V", "s2v-14B": "WanS2V",
                "animate-14B": "Wan-Animate"}[args.task]
    log(f"Creating {pipeline} pipeline.")
    import wan
    getattr(wan, pipeline.replace("-", ""))(config=args.task, checkpoint_dir=args.ckpt_dir, device_id=0, rank=0,
                                           t5_fsdp=args.t5_fsdp, dit_fsdp=args.dit_fsdp, use_sp=(args.ulysses_size or 1) > 1,
                                           t5_cpu=args.t5_cpu, convert_model_dtype=args.convert_model_dtype)
    log("Generating video ...")
    if directive(prompt, "ignore_stop"):
        # A long native call: a warm runner's stop request (SIGUSR1) cannot get in.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    steps = args.sample_steps or DEFAULT_STEPS[args.task]
    step_s = float(directive(prompt, "step_s", "0.02"))
    crash = directive(prompt, "signal")
    # GENWORKER_STANDIN_FAIL (env.set of one worker): that machine is broken, whatever the job.
    fail = directive(prompt, "fail") or os.environ.get("GENWORKER_STANDIN_FAIL") or None
    clips = args.num_clip or 1 if args.task in ("s2v-14B", "animate-14B") else 1
    t0 = time.time()
    for clip in range(clips):
        for step in range(steps + 1):
            pct = int(100 * step / steps)
            bar = ("█" * (pct // 10)).ljust(10)
            elapsed = time.time() - t0
            rate = elapsed / step if step else 0
            eta = rate * (steps - step)
            sys.stderr.write(f"\r{pct:3d}%|{bar}| {step}/{steps} [{int(elapsed)//60:02d}:{int(elapsed)%60:02d}<"
                             f"{int(eta)//60:02d}:{int(eta)%60:02d}, {rate:.2f}s/it]")
            sys.stderr.flush()
            if crash and step == steps // 2:
                os.kill(os.getpid(), int(crash))
            if fail and step == steps // 2:
                sys.stderr.write("\n" + FAILURES[fail])
                sys.stderr.flush()
                sys.exit(1)
            if step < steps:
                time.sleep(step_s)
        sys.stderr.write("\n")
    if directive(prompt, "no_output"):
        log(f"Saving generated video to {args.save_file}")
        print("[ERROR] save_video failed, error: stand-in asked for no output", flush=True)
    elif args.save_file:
        log(f"Saving generated video to {args.save_file}")
        w, h = (int(x) for x in args.size.split("*"))
        size = f"{max(16, w // 16) // 2 * 2}x{max(16, h // 16) // 2 * 2}"
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={FPS[args.task]}",
                        "-t", "0.5", "-pix_fmt", "yuv420p", "-f", "mp4", args.save_file], check=False)
        pad = directive(prompt, "video_mb")
        if pad and os.path.exists(args.save_file):
            with open(args.save_file, "r+b") as f:  # trailing bytes: players ignore them
                f.seek(0, 2)
                f.truncate(f.tell() + int(pad) * (1 << 20))
    exit_code = directive(prompt, "exit")
    if exit_code:
        sys.exit(int(exit_code))
    log("Finished.")


if __name__ == "__main__":
    generate(_parse_args())
