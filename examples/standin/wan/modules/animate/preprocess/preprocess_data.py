#!/usr/bin/env python3
"""Stand-in for Wan2.2's animate preprocessing (wan/modules/animate/preprocess/preprocess_data.py):
the same options; writes src_pose.mp4, src_face.mp4, src_ref.png (+ src_bg.mp4, src_mask.mp4
with --replace_flag) into --save_path. A video path containing "slow" makes it take 20 s."""
import argparse
import os
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--ckpt_path", required=True)
p.add_argument("--video_path", required=True)
p.add_argument("--refer_path", required=True)
p.add_argument("--save_path", required=True)
p.add_argument("--resolution_area", type=int, nargs=2, default=[1280, 720])
p.add_argument("--fps", type=int, default=30)
for flag in ["--retarget_flag", "--use_flux", "--replace_flag"]:
    p.add_argument(flag, action="store_true")
args = p.parse_args()
os.makedirs(args.save_path, exist_ok=True)
with open(os.path.join(args.save_path, "preprocess.pid"), "w") as f:
    f.write(str(os.getpid()))
print("[preprocess] stand-in: pose and face extraction", flush=True)
steps = 40 if "slow" in args.video_path else 4
for i in range(steps + 1):
    sys.stderr.write(f"\r{int(100 * i / steps):3d}%|{'█' * (10 * i // steps):10s}| {i}/{steps} [00:00<00:00, 0.50s/it]")
    sys.stderr.flush()
    if i < steps:
        time.sleep(0.5 if "slow" in args.video_path else 0.01)
sys.stderr.write("\n")
names = ["src_pose.mp4", "src_face.mp4"] + (["src_bg.mp4", "src_mask.mp4"] if args.replace_flag else [])
for name in names:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x36:rate=30", "-t", "0.2",
                    "-pix_fmt", "yuv420p", os.path.join(args.save_path, name)], check=True)
subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x36", "-frames:v", "1",
                os.path.join(args.save_path, "src_ref.png")], check=True)
print("[preprocess] done", flush=True)
