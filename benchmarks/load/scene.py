"""The videos of the load scenario: a textured background and one moving rectangle, so that
clicks land on the object and SAM 2 has something to track. Pure Python (Pillow only for
:func:`frame_jpeg`), shared by the Django child that stores the frames and by the locust users
that click on the object."""

from __future__ import annotations

import io

WIDTH, HEIGHT, FRAMES = 160, 120, 24


def object_box(frame: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` pixels of the object on ``frame`` (moves right and down)."""
    x0 = 20 + 3 * frame
    y0 = 25 + frame
    return x0, y0, x0 + 48, y0 + 36


def click_point(frame: int, n: int) -> tuple[float, float]:
    """The ``n``-th click on ``frame``: inside the object, spread over it."""
    x0, y0, x1, y1 = object_box(frame)
    fx = (0.5, 0.25, 0.75, 0.4, 0.6)[n % 5]
    fy = (0.5, 0.3, 0.7, 0.65, 0.35)[n % 5]
    return x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)


def brush_rle(frame: int) -> dict[str, object]:
    """An uncompressed COCO RLE (column-major runs) of the object's box on ``frame``: what a
    brush stroke over the object saves."""
    x0, y0, x1, y1 = object_box(frame)
    counts: list[int] = []
    last = 0  # index just after the previous foreground run
    for x in range(x0, x1):
        start = x * HEIGHT + y0
        counts += [start - last, y1 - y0]
        last = start + (y1 - y0)
    counts.append(WIDTH * HEIGHT - last)
    return {"size": [HEIGHT, WIDTH], "counts": counts}


def frame_jpeg(frame: int) -> bytes:
    """The JPEG of ``frame``: a striped background and the object as a bright textured box."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (WIDTH, HEIGHT), (40, 60, 80))
    draw = ImageDraw.Draw(image)
    for x in range(0, WIDTH, 8):
        draw.line([(x + frame, 0), (x + frame - HEIGHT, HEIGHT)], fill=(70, 90, 60), width=2)
    x0, y0, x1, y1 = object_box(frame)
    draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=(230, 180, 40))
    draw.ellipse([x0 + 8, y0 + 6, x1 - 9, y1 - 7], fill=(200, 60, 50))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()
