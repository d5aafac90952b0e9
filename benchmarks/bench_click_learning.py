"""Does a small model trained from scratch learn the click -> mask mapping? (issue 12)

Trains a random model (default test_tiny, 128 px) on single procedural frames (the demo recipe's
image stage: one click plus correction clicks per object, several objects per frame), then on
held-out procedural frames reports, for one centre click and then error-centre clicks
(``engine.simulation.clicks``, the evaluation protocol's annotator) through the video session
that ``evaluate_model`` uses:

* IoU after 1..5 clicks (it should rise with clicks);
* with one click, the IoU of the mask the IoU head picks (highest predicted IoU, what inference
  uses) next to the best of the three candidates (an oracle) and the mean predicted IoU: a head
  stuck at ~0 (L1 loss from scratch) picks arbitrarily;
* wall and CPU seconds of the training.

    python benchmarks/bench_click_learning.py --steps 200 --iou-loss l1 bce --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.simulation.clicks import first_click, mask_iou, next_click  # noqa: E402
from engine.simulation.procedural import ProceduralSpec, ProceduralVideo, make_videos  # noqa: E402
from model.build import build_sam2  # noqa: E402
from model.frames import ArrayFrameSource  # noqa: E402
from model.preprocess import frame_to_tensor  # noqa: E402
from model.sam2_base import Sam2Model  # noqa: E402
from model.training.clips import TrainClip  # noqa: E402
from model.training.config import TrainConfig  # noqa: E402
from model.training.loop import train  # noqa: E402
from model.video_predictor import VideoPredictor  # noqa: E402


def image_clips(videos: list[ProceduralVideo]) -> list[TrainClip]:
    """Frames 0, middle and last of each video as one-frame clips (those showing an object)."""
    clips = []
    for video in videos:
        last = video.masks.shape[1] - 1
        for t in sorted({0, last // 2, last}):
            if video.masks[:, t].any():
                clips.append(TrainClip(video.frames[t : t + 1], video.masks[:, t : t + 1]))
    return clips


def image_stage_config(
    steps: int,
    objects: int,
    lr: float,
    correction_clicks: int,
    warmup: int,
    iou_loss: str,
    seed: int,
) -> TrainConfig:
    """The demo recipe's image stage: one-frame clips, a click plus correction clicks per
    object, float32 (the CPU has no fast bf16)."""
    return TrainConfig(
        steps=steps,
        num_frames=1,
        max_objects=objects,
        prob_point_prompt=1.0,
        correction_frames=1,
        correction_clicks=correction_clicks,
        base_lr=lr,
        vision_lr=lr,
        warmup_steps=warmup,
        iou_loss=iou_loss,
        bf16=False,
        seed=seed,
    )


def click_ious(model: Sam2Model, videos: list[ProceduralVideo], clicks: int) -> np.ndarray:
    """Mean IoU on frame 0 after 1..clicks clicks (session path), over every visible object."""
    predictor = VideoPredictor(model, apply_postprocessing=False)
    rows = []
    for video in videos:
        session = predictor.start_session(ArrayFrameSource([video.frames[0]]))
        for o in range(video.masks.shape[0]):
            gt = video.masks[o, 0]
            if not gt.any():
                continue
            mask, ious = np.zeros_like(gt), []
            for k in range(clicks):
                click = first_click(gt) if k == 0 else next_click(mask, gt)
                if click is None:
                    ious.append(1.0)
                    continue
                result = session.add_points(
                    0, o, [[click.x, click.y]], [int(click.positive)], clear_old_points=k == 0
                )
                mask = result.logits[result.obj_ids.index(o), 0].numpy() > 0
                ious.append(mask_iou(mask, gt))
            rows.append(ious)
        session.close()
    return np.asarray(rows).mean(axis=0)


@torch.no_grad()
def candidates(model: Sam2Model, videos: list[ProceduralVideo]) -> dict[str, float]:
    """One centre click on frame 0: IoU of the IoU head's pick, of the best candidate, and the
    mean predicted IoU (SAM heads on the frame's features, as a first click runs them)."""
    size = model.image_size
    picked, best, predicted = [], [], []
    for video in videos:
        height, width = video.masks.shape[2:]
        backbone = model.forward_image(frame_to_tensor(video.frames[0], size)[None])
        _, feats, _, sizes = model._prepare_backbone_features(backbone)
        high_res = [
            x.permute(1, 2, 0).view(1, x.size(2), *s) for x, s in zip(feats[:-1], sizes[:-1])
        ]
        pix = feats[-1].permute(1, 2, 0).view(1, model.hidden_dim, *sizes[-1])
        pix = pix + model.no_mem_embed.view(1, -1, 1, 1)
        for o in range(video.masks.shape[0]):
            gt = video.masks[o, 0]
            if not gt.any():
                continue
            click = first_click(gt)
            points = {
                "point_coords": torch.tensor([[[click.x * size / width, click.y * size / height]]]),
                "point_labels": torch.tensor([[1]], dtype=torch.int32),
            }
            out = model._forward_sam_heads(pix, points, None, high_res, multimask_output=True)
            up = torch.nn.functional.interpolate(out[0], size=(height, width), mode="bilinear")
            ious = [mask_iou(m.numpy() > 0, gt) for m in up[0]]
            pred = out[2][0].float()
            picked.append(ious[int(pred.argmax())])
            best.append(max(ious))
            predicted.append(float(pred.mean()))
    return {
        "picked": float(np.mean(picked)),
        "best_of_3": float(np.mean(best)),
        "predicted_iou": float(np.mean(predicted)),
    }


def run(args: argparse.Namespace, iou_loss: str) -> None:
    spec = ProceduralSpec(num_frames=8, num_objects=args.objects, reappear=False)
    clips = image_clips(make_videos(5000, args.videos, spec))
    heldout = make_videos(9000, args.heldout, ProceduralSpec(num_frames=8, num_objects=2))
    torch.manual_seed(0)
    model = build_sam2(args.config)
    config = image_stage_config(
        args.steps, args.objects, args.lr, args.correction_clicks, args.warmup, iou_loss, seed=1
    )
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(model, clips, config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    model.eval()
    ious = click_ious(model, heldout, 5)
    picks = candidates(model, heldout)
    print(
        f"{args.config} iou_loss={iou_loss} steps={args.steps} images={len(clips)}: "
        f"train {wall:.0f} s wall, {cpu:.0f} s CPU ({cpu / args.steps:.2f} CPU s/step), "
        f"last-10 loss {np.mean(result.losses[-10:]):.3f}"
    )
    print("  held-out IoU after 1..5 clicks: " + " ".join(f"{v:.3f}" for v in ious))
    print(
        f"  one click: IoU head's pick {picks['picked']:.3f}, best of 3 {picks['best_of_3']:.3f}, "
        f"mean predicted IoU {picks['predicted_iou']:.3g}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="test_tiny")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--iou-loss", nargs="+", default=["l1", "bce"])
    parser.add_argument("--videos", type=int, default=100, help="training videos (3 frames each)")
    parser.add_argument("--objects", type=int, default=4, help="objects per training frame")
    parser.add_argument("--heldout", type=int, default=6, help="held-out videos (frame 0)")
    parser.add_argument("--correction-clicks", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for iou_loss in args.iou_loss:
        run(args, iou_loss)


if __name__ == "__main__":
    main()
