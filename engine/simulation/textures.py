"""Textures of procedural objects and backgrounds: pure functions of coordinates, so an object's
texture moves, turns and scales with it.

Objects get two saturated colours in a pattern (stripes, checks, dots, rings or smooth noise) with
shading; backgrounds get muted colours in smooth noise with faint structure. Objects thus differ
from the background in colour and texture statistics without being a single flat colour.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

TEXTURE_KINDS = ("stripes", "checker", "dots", "rings", "plasma")


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB in [0, 255], shape ``(3,)``, of a hue (wrapped to [0, 1)), saturation and value."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


@dataclass(frozen=True)
class Texture:
    """A two-colour pattern in an object's unit frame.

    Attributes:
        kind: one of ``TEXTURE_KINDS``.
        color_a, color_b: ``(3,)`` RGB in [0, 255].
        freq: pattern frequency (radians per unit length).
        angle: pattern orientation (radians).
        waves: ``(3, 3)`` rows ``(fu, fv, phase)`` of the ``plasma`` pattern.
    """

    kind: str
    color_a: np.ndarray
    color_b: np.ndarray
    freq: float
    angle: float
    waves: np.ndarray

    def render(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Colours ``(N, 3)`` float32 of the points ``(u, v)`` (each ``(N,)``, unit frame)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        pu, pv = u * c + v * s, -u * s + v * c
        if self.kind == "stripes":
            mix = 0.5 + 0.5 * np.tanh(3.0 * np.sin(self.freq * pu))
        elif self.kind == "checker":
            mix = (np.sin(self.freq * pu) * np.sin(self.freq * pv) > 0).astype(np.float32)
        elif self.kind == "dots":
            period = 2 * np.pi / self.freq
            du = np.mod(pu, period) / period - 0.5
            dv = np.mod(pv, period) / period - 0.5
            mix = (np.hypot(du, dv) < 0.3).astype(np.float32)
        elif self.kind == "rings":
            mix = 0.5 + 0.5 * np.tanh(3.0 * np.sin(self.freq * np.hypot(u, v)))
        else:
            field = sum(np.sin(fu * u + fv * v + ph) for fu, fv, ph in self.waves)
            mix = 0.5 + 0.5 * np.tanh(1.5 * np.asarray(field))
        mix = np.asarray(mix, dtype=np.float32)[:, None]
        rgb = self.color_a[None, :] * (1.0 - mix) + self.color_b[None, :] * mix
        # soft shading: darker towards the rim, as a lit rounded body
        r2 = np.minimum(u * u + v * v, 1.5).astype(np.float32)
        return np.asarray(rgb * (1.0 - 0.22 * r2)[:, None] + 18.0, dtype=np.float32)


def random_texture(rng: np.random.Generator, hue: float) -> Texture:
    """A saturated two-colour texture around ``hue``."""
    kind = str(rng.choice(TEXTURE_KINDS))
    color_a = hsv(hue, rng.uniform(0.65, 1.0), rng.uniform(0.75, 1.0))
    second_hue = hue + rng.choice([-1.0, 1.0]) * rng.uniform(0.06, 0.16)
    color_b = hsv(second_hue, rng.uniform(0.55, 1.0), rng.uniform(0.35, 0.7))
    return Texture(
        kind=kind,
        color_a=color_a,
        color_b=color_b,
        freq=float(rng.uniform(4.0, 9.0)),
        angle=float(rng.uniform(0, np.pi)),
        waves=np.stack(
            [rng.uniform(-6, 6, 3), rng.uniform(-6, 6, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1
        ),
    )


def background_canvas(rng: np.random.Generator, height: int, width: int, hue: float) -> np.ndarray:
    """A muted, smoothly varying textured canvas ``(height, width, 3)`` float32 in [0, 255]."""
    color_a = hsv(hue, rng.uniform(0.08, 0.3), rng.uniform(0.3, 0.55))
    color_b = hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.08, 0.3), rng.uniform(0.5, 0.75))
    coarse = _smooth_noise(rng, height, width, cells=5)
    fine = _smooth_noise(rng, height, width, cells=24)
    mix = np.clip(coarse * 0.8 + fine * 0.4 - 0.1, 0.0, 1.0)[..., None]
    canvas = color_a * (1.0 - mix) + color_b * mix
    # faint oriented structure (grain, floor boards, foliage...) so the background is not flat
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6.0, 14.0)
    waves = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    canvas = canvas + (rng.uniform(6.0, 14.0) * waves * (fine - 0.5) * 2)[..., None]
    return np.asarray(np.clip(canvas, 0.0, 255.0), dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Bicubic-upsampled random grid in [0, 1], shape ``(height, width)``."""
    grid = rng.uniform(0.0, 1.0, (cells + 3, cells + 3))
    zoomed = ndimage.zoom(grid, ((height + 1) / cells, (width + 1) / cells), order=3)
    return np.clip(zoomed[1 : height + 1, 1 : width + 1], 0.0, 1.0).astype(np.float32)
