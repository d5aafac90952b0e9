"""Write tests/frontend/fixtures/rle_cases.json: masks encoded by pycocotools, for the JS codec.

The node tests (``rle.test.mjs``) check ``frontend/static/js/lib/rle.js`` against these cases;
``test_rle_fixtures.py`` regenerates them and compares with the committed file, so the cases can
neither drift from pycocotools nor be edited by hand. Run from the repository root::

    .venv/bin/python tests/frontend/make_rle_fixtures.py

Each case holds pycocotools' compressed ``counts`` string, the uncompressed counts (column-major
run lengths, background first; computed here with numpy and checked against pycocotools), the
area and the box ``[x, y, w, h]``. The JS tests rebuild each mask from the uncompressed counts
with a naive loop of their own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

FIXTURES = Path(__file__).parent / "fixtures" / "rle_cases.json"


def _shapes(height: int, width: int) -> np.ndarray:
    """A disc, a ring and a diagonal band: curved edges and runs across column boundaries."""
    rows, cols = np.mgrid[0:height, 0:width]
    disc = (rows - height * 0.4) ** 2 + (cols - width * 0.3) ** 2 < (min(height, width) * 0.25) ** 2
    radius2 = (rows - height * 0.6) ** 2 + (cols - width * 0.7) ** 2
    ring = (radius2 < (min(height, width) * 0.2) ** 2) & (radius2 > (min(height, width) * 0.1) ** 2)
    band = np.abs(rows - cols * height / width) < 2
    return disc | ring | band


def _masks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240611)
    rect = np.zeros((48, 64), dtype=bool)
    rect[10:30, 20:50] = True
    single = np.zeros((9, 11), dtype=bool)
    single[4, 7] = True
    corners = np.zeros((6, 5), dtype=bool)
    corners[0, 0] = corners[-1, -1] = corners[0, -1] = corners[-1, 0] = True
    column = np.zeros((10, 8), dtype=bool)
    column[:, 3] = True  # one run exactly one column long
    big = np.zeros((480, 854), dtype=bool)
    big[20:470, 5:800] = True
    big[100:300, 200:400] = False
    return {
        "empty_4x6": np.zeros((4, 6), dtype=bool),
        "full_5x3": np.ones((5, 3), dtype=bool),
        "one_pixel_1x1_on": np.ones((1, 1), dtype=bool),
        "one_pixel_1x1_off": np.zeros((1, 1), dtype=bool),
        "single_pixel_9x11": single,
        "corners_6x5": corners,
        "full_column_10x8": column,
        "rectangle_48x64": rect,
        "noise_7x13": rng.random((7, 13)) < 0.5,
        "noise_37x53": rng.random((37, 53)) < 0.5,
        "sparse_noise_120x90": rng.random((120, 90)) < 0.03,
        "shapes_61x97": _shapes(61, 97),
        # Video-frame sizes: long runs (multi-chunk varints) and negative deltas.
        "frame_480x854": big,
        "shapes_480x854": _shapes(480, 854),
    }


def _case(name: str, mask: np.ndarray) -> dict[str, Any]:
    height, width = mask.shape
    encoded = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    compressed = encoded["counts"].decode("ascii")
    # pycocotools keeps uncompressed counts internal: compute them, then check they compress to
    # its string and that its decoder gives the mask back.
    flat = mask.ravel(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    if flat[0]:
        counts = [0, *counts]  # runs start with background
    again = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    if again["counts"].decode("ascii") != compressed:
        raise AssertionError(f"{name}: uncompressed counts disagree with pycocotools")
    if not np.array_equal(coco_mask.decode(encoded).astype(bool), mask):
        raise AssertionError(f"{name}: pycocotools does not decode its own encoding")
    x, y, w, h = (float(v) for v in coco_mask.toBbox(encoded).tolist())
    return {
        "name": name,
        "size": [height, width],
        "counts": compressed,
        "uncompressed": counts,
        "area": int(coco_mask.area(encoded)),
        "bbox": [x, y, w, h],
    }


def build_cases() -> dict[str, Any]:
    """All cases, as written to the fixtures file."""
    return {
        "generator": "tests/frontend/make_rle_fixtures.py (pycocotools)",
        "cases": [_case(name, mask) for name, mask in _masks().items()],
    }


def render(cases: dict[str, Any]) -> str:
    """The file's exact text: one case per line keeps diffs readable and the file small."""
    lines = ",\n".join(json.dumps(case, separators=(",", ":")) for case in cases["cases"])
    return f'{{"generator":{json.dumps(cases["generator"])},"cases":[\n{lines}\n]}}\n'


def main() -> None:
    FIXTURES.parent.mkdir(parents=True, exist_ok=True)
    FIXTURES.write_text(render(build_cases()), encoding="ascii")
    print(f"wrote {FIXTURES} ({FIXTURES.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
