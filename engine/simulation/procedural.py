"""Procedural videos with exact ground truth: textured shapes that move, deform, occlude each
other, leave the frame and come back, over a textured background under camera motion.

``make_video(seed, spec)`` is deterministic: every random draw comes from
``numpy.random.default_rng(seed)``, so a video is stored as ``(seed, spec)`` and its frames and
masks are regenerated on demand. Masks are exact: a pixel belongs to the front-most object whose
silhouette covers it, and the frame pixel has that object's texture (no anti-aliasing).

How a clip is planned (``_plan``): each object follows a smooth Lissajous path; with occlusion,
each object after the first is steered to meet an earlier one (the meeting point is where their
paths cross, so the one behind loses pixels); with re-appearance, objects are pushed out of the
frame beyond an edge for a few frames and brought back, and ``full_occlusions`` objects are sized
to vanish completely behind the front-most object for a moment. Without occlusion each object
keeps to its own lane. A plan is rendered as masks first and checked (every object well visible on
frame 0, the requested events present, nothing forbidden happening); a rejected plan is redrawn
from the same generator, so the result still depends on the seed alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.simulation.shapes import Part, Shape, random_part, random_shape
from engine.simulation.textures import Texture, background_canvas, random_texture

MAX_PLAN_ATTEMPTS = 400
_ROUND_KINDS = ("disc", "hexagon", "blob")


@dataclass(frozen=True)
class ProceduralSpec:
    """What a procedural clip contains.

    Attributes:
        num_frames, height, width: clip size.
        num_objects: objects per clip.
        occlusion: objects pass in front of each other (a depth order per clip).
        reappear: objects leave the frame (or are fully hidden) and come back.
        camera_motion: the textured background pans and zooms.
        deform: shapes change scale, turn and wobble non-rigidly.
        parts: some objects carry a differently textured part.
        min_size, max_size: body radius as a fraction of ``min(height, width)``.
        exits: how many leave-and-return events a clip has (with ``reappear``).
        full_occlusions: how many objects vanish behind another one for a while (with
            ``reappear`` and ``occlusion``; at most ``num_objects - 1``).
        speed: typical object speed in pixels per frame at 128 px.
        noise: standard deviation of the per-pixel sensor noise (grey levels).
    """

    num_frames: int = 24
    height: int = 128
    width: int = 128
    num_objects: int = 3
    occlusion: bool = True
    reappear: bool = True
    camera_motion: bool = True
    deform: bool = True
    parts: bool = True
    min_size: float = 0.09
    max_size: float = 0.16
    exits: int = 1
    full_occlusions: int = 0
    speed: float = 1.5
    noise: float = 2.0

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        if self.reappear and self.num_frames < 8:
            raise ValueError(f"reappear needs num_frames >= 8, got {self.num_frames}")
        if min(self.height, self.width) < 32:
            raise ValueError(f"frames must be at least 32x32, got {self.width}x{self.height}")
        if not 1 <= self.num_objects <= 8:
            raise ValueError(f"num_objects must be in [1, 8], got {self.num_objects}")
        if not 0 < self.min_size <= self.max_size <= 0.3:
            raise ValueError("need 0 < min_size <= max_size <= 0.3")
        if self.exits < 0 or self.full_occlusions < 0:
            raise ValueError("exits and full_occlusions must be >= 0")
        if self.speed <= 0 or self.noise < 0:
            raise ValueError("speed must be > 0 and noise >= 0")

    @classmethod
    def occlusion_heavy(cls, **overrides: Any) -> ProceduralSpec:
        """Long clips where objects often vanish behind others or leave the frame and return."""
        values: dict[str, Any] = {
            "num_frames": 64,
            "num_objects": 4,
            "exits": 3,
            "full_occlusions": 3,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def effective_full_occlusions(self) -> int:
        if not (self.occlusion and self.reappear):
            return 0
        return min(self.full_occlusions, self.num_objects - 1)

    @property
    def effective_exits(self) -> int:
        return self.exits if self.reappear else 0


@dataclass(frozen=True)
class ProceduralVideo:
    """A generated clip and its exact ground truth.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        masks: ``(O, T, H, W)`` bool, the visible pixels of object o on frame t (disjoint).
        labels: the shape name of each object ("disc", "star", "blob", ...).
        amodal_masks: ``(O, T, H, W)`` bool, each object's whole silhouette inside the frame,
            occluded pixels included (``masks`` is this minus what objects in front cover).
        depth: depth rank of each object, 0 = farthest back.
    """

    seed: int
    spec: ProceduralSpec
    frames: np.ndarray
    masks: np.ndarray
    labels: tuple[str, ...]
    amodal_masks: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0), bool))
    depth: tuple[int, ...] = ()


@dataclass
class _Plan:
    """One object's look and motion. Per-frame arrays have shape ``(T,)`` or ``(T, 2)``."""

    shape: Shape
    part: Part | None
    centre: np.ndarray  # (T, 2) x, y in pixels
    rotation: np.ndarray  # (T,) radians
    scale: np.ndarray  # (T,) body radius in pixels
    extent: float  # farthest outline point in unit coordinates, parts included
    rmin: float  # nearest outline point in unit coordinates
    depth: int = 0

    def bound(self, t: int) -> float:
        return float(self.scale[t] * self.extent) + 1.0


def make_video(seed: int, spec: ProceduralSpec = ProceduralSpec()) -> ProceduralVideo:
    """The clip of ``seed`` under ``spec`` (same inputs, same bytes)."""
    rng = np.random.default_rng(seed)
    plans, amodal, visible = _accepted_plan(rng, spec)
    background_hue = float(rng.uniform(0, 1))
    textures = [_object_textures(rng, background_hue, i, len(plans)) for i in range(len(plans))]
    frames = _background_frames(rng, spec, background_hue)
    for o in np.argsort([p.depth for p in plans]):
        _paint(frames, plans[o], visible[o], textures[o])
    if spec.noise > 0:
        frames += spec.noise * rng.standard_normal(frames.shape, dtype=np.float32)
    return ProceduralVideo(
        seed=seed,
        spec=spec,
        frames=np.clip(np.rint(frames), 0, 255).astype(np.uint8),
        masks=visible,
        labels=tuple(p.shape.kind for p in plans),
        amodal_masks=amodal,
        depth=tuple(p.depth for p in plans),
    )


def make_videos(
    first_seed: int, count: int, spec: ProceduralSpec = ProceduralSpec()
) -> list[ProceduralVideo]:
    """``count`` clips with seeds ``first_seed, first_seed + 1, ...``."""
    return [make_video(first_seed + i, spec) for i in range(count)]


# -- planning ---------------------------------------------------------------------------------


def _accepted_plan(
    rng: np.random.Generator, spec: ProceduralSpec
) -> tuple[list[_Plan], np.ndarray, np.ndarray]:
    for _ in range(MAX_PLAN_ATTEMPTS):
        plans = _plan(rng, spec)
        amodal = np.stack([_silhouettes(p, spec) for p in plans])
        visible = _visible(amodal, [p.depth for p in plans])
        if _acceptable(spec, amodal, visible):
            return plans, amodal, visible
    raise RuntimeError(f"no acceptable layout after {MAX_PLAN_ATTEMPTS} attempts for {spec}")


def _plan(rng: np.random.Generator, spec: ProceduralSpec) -> list[_Plan]:
    T, H, W, N = spec.num_frames, spec.height, spec.width, spec.num_objects
    unit = min(H, W)
    t = np.arange(T, dtype=np.float64)
    speed = spec.speed * unit / 128.0
    full = spec.effective_full_occlusions
    lane_width = W / N
    lanes = rng.permutation(N)
    part_owner = int(rng.integers(N))
    plans: list[_Plan] = []
    for i in range(N):
        shape = random_shape(rng, deform=spec.deform)
        while i == 0 and full and shape.kind not in _ROUND_KINDS:
            shape = random_shape(rng, deform=spec.deform)  # a wide occluder to vanish behind
        has_part = spec.parts and (i == part_owner or rng.random() < 0.4)
        part = random_part(rng, shape) if has_part else None
        rmin, rmax = shape.radius_bounds(T)
        extent = max(rmax, part.extent() if part is not None else 0.0)
        size = rng.uniform(spec.min_size, spec.max_size) * unit
        if i == 0 and full:
            size = spec.max_size * unit * 1.15  # the occluder others vanish behind
        scale_amp = rng.uniform(0.04, 0.15) if spec.deform else 0.0
        if 0 < i <= full:
            # small enough to hide entirely inside object 0's smallest outline
            front = plans[0]
            inner = front.rmin * float(front.scale.min()) - 2.0
            size = min(size, inner / (extent * (1 + scale_amp)))
        if not spec.occlusion:
            size = min(size, (0.45 * lane_width - 1) / (extent * (1 + scale_amp)))
        size = max(size, 3.0)
        scale = size * (1 + scale_amp * np.sin(rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6.3)))
        if spec.deform:
            rotation = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.08, 0.08) * t
        else:
            rotation = np.full(T, rng.uniform(0, 2 * np.pi))
        bound = size * (1 + scale_amp) * extent
        if spec.occlusion:
            margin = min(0.6 * bound, unit / 2 - 1)
            box = np.array([[margin, W - margin], [margin, H - margin]])
        else:  # each object keeps to its own vertical lane
            lo = lanes[i] * lane_width + bound + 1
            hi = max((lanes[i] + 1) * lane_width - bound - 1, lo)
            box = np.array(
                [[lo, hi], [min(0.6 * bound, H / 2 - 1), H - min(0.6 * bound, H / 2 - 1)]]
            )
        meet = int(rng.integers(int(0.3 * T), max(int(0.85 * T), int(0.3 * T) + 1)))
        angle = rng.uniform(0, 2 * np.pi)
        velocity = speed * rng.uniform(0.6, 1.4) * np.array([np.cos(angle), np.sin(angle)])
        centre_box = box.mean(1, keepdims=True) + (box - box.mean(1, keepdims=True)) * 0.6
        point = rng.uniform(centre_box[:, 0], centre_box[:, 1])
        if spec.occlusion and i > 0:
            # steer this object to meet an earlier one at frame `meet`
            partner = plans[0] if i <= full else plans[int(rng.integers(i))]
            point = partner.centre[meet].copy()
            partner_velocity = partner.centre[min(meet + 1, T - 1)] - partner.centre[meet]
            if i <= full:  # hide behind object 0 for a while: nearly the same velocity
                angle = rng.uniform(0, 2 * np.pi)
                drift = speed * rng.uniform(0.3, 0.7) * np.array([np.cos(angle), np.sin(angle)])
                velocity = partner_velocity + drift
            else:  # cross its path: a partial occlusion
                heading = math.atan2(partner_velocity[1], partner_velocity[0])
                angle = heading + rng.uniform(0.5 * np.pi, 1.5 * np.pi)
                velocity = np.linalg.norm(velocity) * np.array([np.cos(angle), np.sin(angle)])
                reach = partner.rmin * partner.scale[meet] + rmin * scale[meet]
                angle = rng.uniform(0, 2 * np.pi)
                point += rng.uniform(0.2, 0.7) * reach * np.array([np.cos(angle), np.sin(angle)])
        centre = _path(rng, t, meet, point, velocity, box, wiggle=0.15 * bound)
        plans.append(_Plan(shape, part, centre, rotation, scale, extent, rmin))

    depth = [int(d) for d in rng.permutation(N)]
    if full:  # object 0 in front of everything
        depth = [N - 1] + [int(d) for d in rng.permutation(N - 1)]
    for plan, d in zip(plans, depth):
        plan.depth = d

    exits = spec.effective_exits
    if exits:
        movers = [(int(rng.integers(N)) + k) % N for k in range(exits)]
        for o in sorted(set(movers)):
            _add_exits(rng, plans[o], movers.count(o), spec, speed, vertical=not spec.occlusion)
    return plans


def _path(
    rng: np.random.Generator,
    t: np.ndarray,
    meet: int,
    point: np.ndarray,
    velocity: np.ndarray,
    box: np.ndarray,
    *,
    wiggle: float,
) -> np.ndarray:
    """``(T, 2)`` centre through ``point`` at frame ``meet``: a straight drift plus a small wiggle.

    The drift is slowed down so that the straight part stays inside ``box`` (``[[x0, x1],
    [y0, y1]]``) over the whole clip; the wiggle vanishes at ``meet``, so the meeting is exact.
    """
    point = np.clip(point, box[:, 0], box[:, 1])
    factor = 1.0
    for axis in range(2):
        for dt in (-meet, t[-1] - meet):
            step = velocity[axis] * dt
            room = (box[axis, 1] - point[axis]) if step > 0 else (point[axis] - box[axis, 0])
            if abs(step) > 1e-9:
                factor = min(factor, max(room, 0.0) / abs(step))
    out = point[None, :] + factor * velocity[None, :] * (t - meet)[:, None]
    for axis in range(2):
        freq, phase = rng.uniform(0.15, 0.5), rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(0.0, wiggle)
        out[:, axis] += amp * (np.sin(freq * t + phase) - np.sin(freq * meet + phase))
    return out


def _add_exits(
    rng: np.random.Generator,
    plan: _Plan,
    count: int,
    spec: ProceduralSpec,
    speed: float,
    *,
    vertical: bool,
) -> None:
    """Push the object out over the nearest edge ``count`` times and bring it back.

    The timeline after frame 0 is cut into ``count`` slots; in each, the centre ramps out
    (smoothstep), stays fully outside for a few frames, and ramps back before the slot ends.
    """
    T, H, W = spec.num_frames, spec.height, spec.width
    slot = (T - 2) // count
    for k in range(count):
        start, stop = 1 + k * slot, 1 + (k + 1) * slot  # frames [start, stop)
        if stop - start < 5:
            return
        length = stop - start
        hold = int(rng.integers(1, max(1, min(length // 3, 6)) + 1))
        if (length - hold) // 2 < 2:
            hold = length - 4
        # nearest edge at the middle of the slot
        x, y = plan.centre[(start + stop) // 2]
        edges = [(y, (0, -1)), (H - y, (0, 1))]
        if not vertical:
            edges += [(x, (-1, 0)), (W - x, (1, 0))]
        _, direction = min(edges, key=lambda e: e[0])
        d = np.array(direction, dtype=np.float64)
        needed = 0.0
        window = range(start, stop)
        for t in window:
            cx, cy = plan.centre[t]
            to_edge = {(0, -1): cy, (0, 1): H - cy, (-1, 0): cx, (1, 0): W - cx}[direction]
            needed = max(needed, to_edge + plan.bound(t) + 1.0)
        ramp = int(np.clip(math.ceil(needed / (2.5 * speed)), 2, (length - hold) // 2))
        first = int(rng.integers(start, stop - (2 * ramp + hold) + 1))
        bump = np.zeros(T)
        for i in range(ramp + 1):
            s = i / ramp
            value = 3 * s * s - 2 * s**3
            bump[first + i] = value
            bump[first + 2 * ramp + hold - 1 - i] = value
        bump[first + ramp : first + ramp + hold] = 1.0
        plan.centre += bump[:, None] * needed * d[None, :]


def _acceptable(spec: ProceduralSpec, amodal: np.ndarray, visible: np.ndarray) -> bool:
    """Whether a rendered plan shows what ``spec`` asks for (and nothing it forbids)."""
    N, T = visible.shape[:2]
    area = visible.reshape(N, T, -1).sum(-1)
    whole = amodal.reshape(N, T, -1).sum(-1)
    min_area = max(12, int(20 * spec.height * spec.width / 128**2))
    if np.any(area[:, 0] < min_area) or np.any(area[:, 0] < 0.4 * whole[:, 0]):
        return False
    if np.any((area > 0).sum(1) < min(3, T)):
        return False
    if not spec.reappear and np.any(area < min_area):
        return False
    wants_gap = spec.reappear and (spec.effective_exits or spec.effective_full_occlusions)
    if wants_gap and not any(_has_gap(area[o] > 0) for o in range(N)):
        return False
    if spec.effective_full_occlusions and not np.any((whole > 0) & (area == 0)):
        return False
    shrunk = (whole > 0) & (area < 0.9 * whole) & (area > 0)
    if spec.occlusion and N > 1 and not np.any(shrunk):
        return False
    # without occlusion, silhouettes never overlap
    return spec.occlusion or not np.any(amodal.sum(0) > 1)


def _has_gap(present: np.ndarray) -> bool:
    """Whether a ``(T,)`` bool track has an absent span between present frames."""
    idx = np.flatnonzero(present)
    return idx.size > 0 and bool(np.any(~present[idx[0] : idx[-1] + 1]))


# -- rendering --------------------------------------------------------------------------------


def _local(plan: _Plan, t: int, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres ``(xs, ys)`` in the object's unit frame on frame ``t``."""
    dx, dy = xs - plan.centre[t, 0], ys - plan.centre[t, 1]
    c, s = np.cos(plan.rotation[t]), np.sin(plan.rotation[t])
    return (dx * c + dy * s) / plan.scale[t], (-dx * s + dy * c) / plan.scale[t]


def _inside(plan: _Plan, t: int, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inside the object, inside its part) for unit-frame points."""
    body = np.hypot(u, v) <= plan.shape.radius(np.arctan2(v, u), float(t))
    part = plan.part.contains(u, v) if plan.part is not None else np.zeros_like(body)
    return body | part, part


def _silhouettes(plan: _Plan, spec: ProceduralSpec) -> np.ndarray:
    """``(T, H, W)`` bool whole silhouette of one object, computed in its bounding box."""
    T, H, W = spec.num_frames, spec.height, spec.width
    out = np.zeros((T, H, W), dtype=bool)
    for t in range(T):
        b = plan.bound(t)
        x0, x1 = max(int(plan.centre[t, 0] - b), 0), min(int(plan.centre[t, 0] + b) + 2, W)
        y0, y1 = max(int(plan.centre[t, 1] - b), 0), min(int(plan.centre[t, 1] + b) + 2, H)
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        u, v = _local(plan, t, xs, ys)
        out[t, y0:y1, x0:x1] = _inside(plan, t, u, v)[0]
    return out


def _visible(amodal: np.ndarray, depth: list[int]) -> np.ndarray:
    """Visible pixels: each silhouette minus the silhouettes of objects in front of it."""
    visible = np.zeros_like(amodal)
    covered = np.zeros_like(amodal[0])
    for o in np.argsort(depth)[::-1]:  # front to back
        visible[o] = amodal[o] & ~covered
        covered |= amodal[o]
    return visible


def _object_textures(
    rng: np.random.Generator, background_hue: float, index: int, count: int
) -> tuple[Texture, Texture]:
    """Body and part textures; hues spread over the colour wheel, at least 0.2 away from the
    background's."""
    hue = background_hue + 0.2 + 0.6 * (index + rng.uniform(0.0, 0.6)) / count
    body = random_texture(rng, hue)
    part = random_texture(rng, hue + rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.35))
    return body, part


def _paint(
    frames: np.ndarray, plan: _Plan, visible: np.ndarray, textures: tuple[Texture, Texture]
) -> None:
    """Write the object's textured visible pixels into ``frames`` ``(T, H, W, 3)`` float32."""
    body_tex, part_tex = textures
    for t in range(frames.shape[0]):
        ys, xs = np.nonzero(visible[t])
        if ys.size == 0:
            continue
        u, v = _local(plan, t, xs.astype(np.float64), ys.astype(np.float64))
        colours = body_tex.render(u, v)
        _, part = _inside(plan, t, u, v)
        if part.any():
            colours[part] = part_tex.render(u[part], v[part])
        frames[t, ys, xs] = colours


def _background_frames(rng: np.random.Generator, spec: ProceduralSpec, hue: float) -> np.ndarray:
    """``(T, H, W, 3)`` float32 background seen through a panning, zooming camera.

    The canvas is 30% larger than the frame on every side; pan (at most 12% of the frame) and
    zoom (at most 15%) keep the view inside it. Bilinear sampling.
    """
    T, H, W = spec.num_frames, spec.height, spec.width
    my, mx = math.ceil(0.3 * H), math.ceil(0.3 * W)
    canvas = background_canvas(rng, H + 2 * my, W + 2 * mx, hue)
    if not spec.camera_motion:
        return np.repeat(canvas[None, my : my + H, mx : mx + W], T, axis=0).copy()
    t = np.arange(T, dtype=np.float64)
    zoom = 1 + rng.uniform(0.05, 0.15) * np.sin(rng.uniform(0.05, 0.2) * t + rng.uniform(0, 6.3))
    pan = []
    for size in (W, H):
        amp = rng.uniform(0.05, 0.12) * size
        freq = min(spec.speed * rng.uniform(0.4, 1.0) / amp, 0.3)
        pan.append(amp * np.sin(freq * t + rng.uniform(0, 6.3)))
    xs, ys = np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64)
    frames = np.empty((T, H, W, 3), dtype=np.float32)
    for i in range(T):
        frames[i] = _resample(
            canvas,
            my + H / 2 + pan[1][i] + (ys - H / 2) / zoom[i],
            mx + W / 2 + pan[0][i] + (xs - W / 2) / zoom[i],
        )
    return frames


def _resample(canvas: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples ``(len(rows), len(cols), 3)`` of ``canvas`` ``(Hc, Wc, 3)`` on the grid
    of float positions ``rows`` x ``cols`` (a separable view: rows first, then columns)."""
    r0, fr = _split(rows, canvas.shape[0])
    c0, fc = _split(cols, canvas.shape[1])
    band = canvas[r0] * (1 - fr)[:, None, None] + canvas[r0 + 1] * fr[:, None, None]
    out = band[:, c0] * (1 - fc)[None, :, None] + band[:, c0 + 1] * fc[None, :, None]
    return np.asarray(out, dtype=np.float32)


def _split(coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer cell and float32 fraction of positions, clamped inside ``[0, size - 1)``."""
    coords = np.clip(coords, 0, size - 1.001)
    low = np.floor(coords).astype(np.intp)
    return low, (coords - low).astype(np.float32)
