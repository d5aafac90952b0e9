#!/usr/bin/env bash
# CUDA checks of the GPU path, for a machine with an NVIDIA GPU (run from anywhere):
#
#   benchmarks/device_check.sh            # about 3-6 minutes on one GPU (compilation included)
#   FRAMES=200 SIZE=1024 benchmarks/device_check.sh
#
# 1. Propagation speed on CUDA: random sam2.1_hiera_t weights, one object clicked on frame 0 of a
#    synthetic clip of $FRAMES frames (default 100) at $SIZE px (default 1024), bf16 autocast and
#    TF32, eager and then with torch.compile of the image encoder and memory attention
#    (model.gpu.compile_model, as Meta's vos_optimized). Frames are decoded into memory first,
#    as Meta's benchmark.py does; 5 warm-up frames are not timed. Prints FPS (Meta's A100
#    figure for hiera_t, compiled: 91.2 FPS) and the reserved GPU memory before and after the
#    session is closed (closing must give it back).
# 2. Parity with Meta's predictor on CUDA: tests/model/test_video_parity.py's SCRIPT_A (clicks,
#    box, mask, corrections, forward and reverse propagation) through Meta's SAM2VideoPredictor
#    and ours (python -m model predict-video --device cuda), both in bf16 on the GPU, with the
#    same random weights; prints the worst mask IoU over frames and objects (pass >= 0.95: bf16
#    kernels differ in rounding between the two implementations' op orders).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD:$PWD/platform"
PY="${PYTHON:-.venv/bin/python}"
export FRAMES="${FRAMES:-100}" SIZE="${SIZE:-1024}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== 1. propagation FPS on CUDA (sam2.1_hiera_t, ${SIZE} px, ${FRAMES} frames, 1 object)"
"$PY" - <<'EOF'
import os, time
import numpy as np
import torch
from model.build import build_sam2
from model.config import get_config
from model.frames import ArrayFrameSource
from model.gpu import compile_model, enable_tf32
from model.video_predictor import VideoPredictor

assert torch.cuda.is_available(), "no CUDA device"
enable_tf32()
frames_n, size = int(os.environ["FRAMES"]), int(os.environ["SIZE"])
rng = np.random.default_rng(0)
frames = []
for i in range(frames_n):
    img = rng.integers(0, 40, (720, 1280, 3)).astype(np.uint8)
    img[200:500, 100 + 5 * i % 700 : 400 + 5 * i % 700] = (210, 60, 50)
    frames.append(img)
torch.manual_seed(0)
model = build_sam2(get_config("sam2.1_hiera_t", size), None, device="cuda").eval()
for compiled in (False, True):
    if compiled:
        compile_model(model)
    predictor = VideoPredictor(model, dtype="bfloat16", feature_cache_size=2)
    session = predictor.start_session(ArrayFrameSource(frames))
    session.add_points(0, 1, [[250, 350]], [1])
    start = None
    for result in session.propagate():
        if result.frame_idx == 5:
            torch.cuda.synchronize()
            start = time.perf_counter()
    torch.cuda.synchronize()
    fps = (frames_n - 6) / (time.perf_counter() - start)
    held = torch.cuda.memory_reserved() / 2**20
    session.close()
    after = torch.cuda.memory_reserved() / 2**20
    print(f"{'compiled' if compiled else 'eager':8s}: {fps:7.1f} FPS (A100 official, hiera_t "
          f"compiled: 91.2); reserved {held:.0f} MiB open, {after:.0f} MiB after close")
EOF

echo "== 2. parity with Meta's predictor on CUDA (bf16)"
"$PY" - <<'EOF'
import json, subprocess, sys, tempfile
from pathlib import Path
import numpy as np
import torch
from PIL import Image
from sam2.build_sam import build_sam2, build_sam2_video_predictor
from tests.model.test_video_parity import (
    HEIGHT, NUM_FRAMES, SCRIPT_A, WIDTH, _official_overrides, _write_video,
)

root = Path(tempfile.mkdtemp())
_write_video(root / "frames")
torch.manual_seed(0)
yaml = "configs/sam2.1/sam2.1_hiera_t.yaml"
net = build_sam2(yaml, None, device="cpu", hydra_overrides_extra=_official_overrides())
torch.save({"model": net.state_dict()}, root / "ckpt.pt")
predictor = build_sam2_video_predictor(
    yaml, str(root / "ckpt.pt"), device="cuda", hydra_overrides_extra=_official_overrides()
)
latest = {}
with torch.autocast("cuda", dtype=torch.bfloat16):
    state = predictor.init_state(str(root / "frames"))
    for a in SCRIPT_A:
        if a["op"] == "add" and "mask" in a:
            mask = np.asarray(Image.open(root / a["mask"]).convert("L")) > 0
            outs = [predictor.add_new_mask(state, a["frame"], a["obj_id"], mask)]
        elif a["op"] == "add":
            outs = [predictor.add_new_points_or_box(
                state, a["frame"], a["obj_id"], points=a.get("points"),
                labels=a.get("labels"), box=a.get("box"))]
        else:
            outs = predictor.propagate_in_video(state, start_frame_idx=a["start"], reverse=a["reverse"])
        for f, ids, logits in outs:
            for i, o in enumerate(ids):
                latest[(f, o)] = logits[i, 0].float().cpu().numpy() > 0
(root / "actions.json").write_text(json.dumps({"actions": SCRIPT_A}))
cmd = [sys.executable, "-m", "model", "predict-video", "--config", "sam2.1_hiera_t",
       "--image-size", "128", "--checkpoint", str(root / "ckpt.pt"), "--frames",
       str(root / "frames"), "--prompts", str(root / "actions.json"), "--out",
       str(root / "ours.npz"), "--dtype", "bfloat16", "--device", "cuda"]
subprocess.run(cmd, check=True)
ours = np.load(root / "ours.npz")
ids = list(ours["obj_ids"])
worst = 1.0
for (f, o), theirs in latest.items():
    mine = ours["logits"][f, ids.index(o)] > 0
    union = (mine | theirs).sum()
    worst = min(worst, 1.0 if union == 0 else (mine & theirs).sum() / union)
print(f"parity on CUDA: worst mask IoU {worst:.4f} over {len(latest)} frame-object pairs "
      f"({'PASS' if worst >= 0.95 else 'FAIL'})")
sys.exit(0 if worst >= 0.95 else 1)
EOF
