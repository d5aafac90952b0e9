"""Star-shaped silhouettes for procedural videos: a radius per direction, optionally wobbling.

A shape lives in its own unit frame: a point ``(u, v)`` is inside when
``hypot(u, v) <= radius(atan2(v, u), t)``. Rotation, scale and position are applied by the
caller (``engine.simulation.procedural``), so a shape is rendered exactly on the pixel grid.
A *part* is a small disc or ellipse attached to the body in the same unit frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPE_KINDS = ("disc", "ellipse", "star", "triangle", "square", "hexagon", "blob")
_POLYGON_SIDES = {"triangle": 3, "square": 4, "hexagon": 6}


@dataclass(frozen=True)
class Wobble:
    """Non-rigid deformation: ``sum_j amp_j * sin(freq_j * t + phase_j) * cos(k_j * phi + turn_j)``.

    All arrays have shape ``(J,)``; ``J == 0`` is a rigid shape.
    """

    k: np.ndarray
    amp: np.ndarray
    freq: np.ndarray
    phase: np.ndarray
    turn: np.ndarray

    @classmethod
    def none(cls) -> Wobble:
        empty = np.zeros(0)
        return cls(empty, empty, empty, empty, empty)

    def at(self, phi: np.ndarray, t: float) -> np.ndarray:
        """Radius offset, shape of ``phi``."""
        out = np.zeros_like(phi)
        for k, amp, freq, phase, turn in zip(self.k, self.amp, self.freq, self.phase, self.turn):
            out += amp * np.sin(freq * t + phase) * np.cos(k * phi + turn)
        return out


@dataclass(frozen=True)
class Shape:
    """A body outline in unit coordinates.

    Attributes:
        kind: one of ``SHAPE_KINDS`` (the object's label).
        harmonics: ``(K, 3)`` rows ``(k, amplitude, phase)`` of a blob's fixed outline.
        wobble: time-varying deformation (``Wobble.none()`` when rigid).
    """

    kind: str
    harmonics: np.ndarray
    wobble: Wobble

    def radius(self, phi: np.ndarray, t: float) -> np.ndarray:
        """Outline radius in direction ``phi`` (radians, any shape) on frame ``t``."""
        return self._base(phi) + self.wobble.at(phi, t)

    def _base(self, phi: np.ndarray) -> np.ndarray:
        if self.kind == "disc":
            return np.ones_like(phi)
        if self.kind == "ellipse":
            return 1.0 / np.sqrt(np.cos(phi) ** 2 + (np.sin(phi) / 0.6) ** 2)
        if self.kind == "star":
            return 0.78 + 0.27 * np.cos(self.harmonics[0, 0] * phi)
        if self.kind in _POLYGON_SIDES:
            n = _POLYGON_SIDES[self.kind]
            sector = 2 * np.pi / n
            # circumradius 1: r(phi) = cos(pi/n) / cos((phi mod sector) - pi/n)
            return np.cos(np.pi / n) / np.cos(np.mod(phi, sector) - np.pi / n)
        out = np.ones_like(phi)
        for k, amp, phase in self.harmonics:
            out += amp * np.cos(k * phi + phase)
        return out

    def radius_bounds(self, num_frames: int) -> tuple[float, float]:
        """(min, max) outline radius over all directions and frames."""
        phi = np.linspace(-np.pi, np.pi, 361)
        radii = np.stack([self.radius(phi, float(t)) for t in range(max(num_frames, 1))])
        return float(radii.min()), float(radii.max())


@dataclass(frozen=True)
class Part:
    """A differently textured part: an ellipse centred at ``(u, v)`` with semi-axes ``(a, b)``,
    turned by ``angle``, in the body's unit frame."""

    u: float
    v: float
    a: float
    b: float
    angle: float

    def contains(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        du, dv = u - self.u, v - self.v
        c, s = np.cos(self.angle), np.sin(self.angle)
        pu, pv = du * c + dv * s, -du * s + dv * c
        return (pu / self.a) ** 2 + (pv / self.b) ** 2 <= 1.0

    def extent(self) -> float:
        """Farthest distance of the part from the body's centre (unit frame)."""
        return float(np.hypot(self.u, self.v) + max(self.a, self.b))


def random_shape(rng: np.random.Generator, *, deform: bool) -> Shape:
    kind = str(rng.choice(SHAPE_KINDS))
    if kind == "star":
        harmonics = np.array([[float(rng.integers(4, 7)), 0.0, 0.0]])
    elif kind == "blob":
        ks = np.arange(2, 5, dtype=float)
        harmonics = np.stack(
            [ks, rng.uniform(0.05, 0.14, ks.size), rng.uniform(0, 2 * np.pi, ks.size)], axis=1
        )
    else:
        harmonics = np.zeros((0, 3))
    wobble = Wobble.none()
    if deform:
        j = 2
        wobble = Wobble(
            k=rng.integers(2, 5, j).astype(float),
            amp=rng.uniform(0.03, 0.08, j),
            freq=rng.uniform(0.15, 0.45, j),
            phase=rng.uniform(0, 2 * np.pi, j),
            turn=rng.uniform(0, 2 * np.pi, j),
        )
    return Shape(kind=kind, harmonics=harmonics, wobble=wobble)


def random_part(rng: np.random.Generator, shape: Shape) -> Part:
    """A part sitting on the body's outline (half inside, half outside)."""
    direction = float(rng.uniform(0, 2 * np.pi))
    rim = float(shape._base(np.array([direction]))[0])
    dist = rim * float(rng.uniform(0.75, 0.95))
    a = float(rng.uniform(0.3, 0.45))
    return Part(
        u=dist * np.cos(direction),
        v=dist * np.sin(direction),
        a=a,
        b=a * float(rng.uniform(0.6, 1.0)),
        angle=direction,
    )
