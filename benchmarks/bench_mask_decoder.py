"""Mask decoder latency on CPU: this tree's ``model/`` against another commit's, paired.

A click's model time is mostly the mask decoder once the frame's features are cached (the
interactive benchmark's breakdown). This times ``sam_prompt_encoder`` + ``sam_mask_decoder`` as a
video click runs them (two points, the previous mask logits as the mask prompt, one output mask,
high-resolution features), for B objects at once, with random weights of ``--config``.

With ``--against REF`` the ``model/`` package of git commit REF is extracted into a temporary
folder under another name, both models get the same weights, and the two are called
alternately in one process, so that a busy or noisy machine slows both alike; the outputs are
compared too. Prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_mask_decoder.py                      # this tree only
    .venv/bin/python benchmarks/bench_mask_decoder.py --against HEAD~3 --objects 1 3
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def extract_model_package(ref: str, folder: Path) -> str:
    """``model/`` of commit ``ref`` as package ``model_at_ref`` in ``folder``; its name."""
    archive = subprocess.run(
        ["git", "archive", ref, "model"], cwd=REPO, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    package = folder / "model_at_ref"
    (folder / "model").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\bfrom model([. ])", r"from model_at_ref\1", text)
        text = re.sub(r"\bimport model\.", "import model_at_ref.", text)
        path.write_text(text)
    sys.path.insert(0, str(folder))
    return "model_at_ref"


def click_runner(model: Any, objects: int, seed: int) -> Callable[[], torch.Tensor]:
    """One video click's prompt encoder and decoder calls for ``objects`` objects."""
    encoder, decoder = model.sam_prompt_encoder, model.sam_mask_decoder
    channels = decoder.transformer_dim
    side = encoder.image_embedding_size[0]
    size = encoder.input_image_size[0]
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(objects, channels, side, side, generator=gen)
    high_res = [
        torch.randn(objects, channels // 8, 4 * side, 4 * side, generator=gen),
        torch.randn(objects, channels // 4, 2 * side, 2 * side, generator=gen),
    ]
    points = torch.rand(objects, 2, 2, generator=gen) * size
    labels = torch.tensor([[1, 0]] * objects, dtype=torch.int32)
    previous = torch.randn(objects, 1, 4 * side, 4 * side, generator=gen)

    def run() -> torch.Tensor:
        sparse, dense = encoder(points=(points, labels), boxes=None, masks=previous)
        pe = encoder.get_dense_pe()
        masks, _, _, _ = decoder(image, pe, sparse, dense, False, False, high_res)
        return masks

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--calls", type=int, default=30, help="timed calls per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--against", help="a git commit whose model/ to compare with")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    build = importlib.import_module("model.build").build_sam2
    models = {"this tree": build(args.config).eval()}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            package = extract_model_package(args.against, Path(tmp))
            other = importlib.import_module(f"{package}.build").build_sam2(args.config).eval()
            other.load_state_dict(models["this tree"].state_dict())
            models = {args.against: other, **models}
        print(
            f"{args.config}: prompt encoder + mask decoder of one video click (2 points, a mask "
            f"prompt, 1 output); {args.threads} torch threads; {args.calls} calls each, alternating"
        )
        with torch.inference_mode():
            for objects in args.objects:
                runners = {
                    name: click_runner(m, objects, seed=objects) for name, m in models.items()
                }
                outputs = {name: run() for name, run in runners.items()}
                times: dict[str, list[float]] = {name: [] for name in runners}
                for _ in range(args.calls):
                    for name, run in runners.items():
                        start = time.perf_counter()
                        run()
                        times[name].append(1000 * (time.perf_counter() - start))
                line = [f"  {objects} object(s)"]
                for name, values in times.items():
                    values.sort()
                    line.append(
                        f"{name} median {values[len(values) // 2]:.1f} ms "
                        f"(p10 {values[len(values) // 10]:.1f})"
                    )
                if len(outputs) == 2:
                    first, second = outputs.values()
                    line.append(f"max |diff| {(first - second).abs().max().item():.1e}")
                print("; ".join(line))


if __name__ == "__main__":
    main()
