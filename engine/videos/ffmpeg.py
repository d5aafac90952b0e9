"""ffprobe / ffmpeg wrappers: validate a video file and decode it to JPEG frames.

Every failure is an :class:`IngestError` whose message names the problem in words a person
uploading the file can act on.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg

from engine.errors import InvalidInput

#: Codecs the decoder is known to handle; anything else is refused up front.
SUPPORTED_CODECS = frozenset(
    {
        "h264",
        "hevc",
        "vp8",
        "vp9",
        "av1",
        "mpeg4",
        "mpeg2video",
        "mpeg1video",
        "mjpeg",
        "prores",
        "theora",
        "cinepak",
        "msmpeg4v2",
        "msmpeg4v3",
        "wmv2",
        "wmv3",
    }
)
# Demuxer messages that mean the container itself is cut short or damaged. Decoder chatter such as
# "non-intra slice in an IDR NAL unit" (present in many valid camera files) is not listed.
_CORRUPTION_MARKERS = (
    "partial file",
    "moov atom not found",
    "invalid data found when processing input",
    "truncat",
    "end of file",
    "packet corrupt",
)


class IngestError(InvalidInput):
    """A video cannot be ingested; the message is shown to the user as is."""


@dataclass(frozen=True)
class VideoLimits:
    max_width: int
    max_height: int
    max_seconds: float


@dataclass(frozen=True)
class ProbeResult:
    codec: str
    width: int
    height: int
    fps: float
    duration: float
    frame_count: int | None


def probe_video(path: Path, limits: VideoLimits) -> ProbeResult:
    """Validate ``path`` with ffprobe and a packet scan; raise :class:`IngestError` if unusable."""
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        detail = _last_line(exc.stderr)
        raise IngestError(f"Not a readable video file ({detail})") from None
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    streams = [s for s in streams if s.get("disposition", {}).get("attached_pic", 0) == 0]
    if not streams:
        raise IngestError("The file contains no video stream (no frames)")
    stream = streams[0]
    codec = str(stream.get("codec_name", "unknown"))
    if codec not in SUPPORTED_CODECS:
        raise IngestError(
            f"Unsupported video codec {codec!r}; supported: {', '.join(sorted(SUPPORTED_CODECS))}"
        )
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        raise IngestError("The video stream has no frame size (no decodable frames)")
    if width > limits.max_width or height > limits.max_height:
        raise IngestError(
            f"Resolution {width}x{height} is over the limit of "
            f"{limits.max_width}x{limits.max_height}"
        )
    fps = _frame_rate(stream)
    duration = _duration(stream, info.get("format", {}))
    nb_frames = int(stream["nb_frames"]) if str(stream.get("nb_frames", "")).isdigit() else None
    if nb_frames == 0 or duration <= 0:
        raise IngestError("The video contains zero frames")
    if duration > limits.max_seconds:
        raise IngestError(
            f"Duration {duration:.1f} s is over the limit of {limits.max_seconds:.0f} s"
        )
    _scan_packets(path)
    return ProbeResult(codec, width, height, fps, duration, nb_frames)


def _scan_packets(path: Path) -> None:
    """Read every video packet without decoding; a truncated or damaged container shows here."""
    proc = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = proc.stderr.lower()
    if proc.returncode != 0 or any(marker in errors for marker in _CORRUPTION_MARKERS):
        raise IngestError(f"The video is truncated or corrupt ({_last_line(proc.stderr)})")


def decode_frames(
    path: Path,
    out_dir: Path,
    fps: float,
    duration: float,
    on_progress: Callable[[float], None] | None = None,
) -> list[Path]:
    """Decode ``path`` at ``fps`` into ``out_dir/000000.jpg ...``; return frame paths in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = (
        ffmpeg.input(str(path))
        .filter("fps", fps=fps)
        .output(str(out_dir / "%06d.jpg"), start_number=0, **{"q:v": 2, "an": None})
        .global_args("-nostdin", "-v", "error", "-progress", "pipe:1", "-nostats")
        .compile()
    )
    proc = subprocess.Popen(  # noqa: S603 - argument list built by ffmpeg-python
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    for seconds in _progress_seconds(proc.stdout):
        if on_progress and duration > 0:
            on_progress(min(1.0, seconds / duration))
    stderr = proc.stderr.read()
    proc.wait()
    frames = sorted(out_dir.glob("*.jpg"))
    if proc.returncode != 0:
        raise IngestError(f"Decoding failed ({_last_line(stderr)})")
    if not frames:
        raise IngestError("Decoding produced zero frames")
    return frames


def _progress_seconds(stream: object) -> Iterator[float]:
    for line in stream:  # type: ignore[attr-defined]
        match = re.match(r"out_time_us=(\d+)", line)
        if match:
            yield int(match.group(1)) / 1e6


def _frame_rate(stream: dict[str, object]) -> float:
    for key in ("avg_frame_rate", "r_frame_rate"):
        raw = str(stream.get(key, "0/0"))
        try:
            rate = Fraction(raw)
        except (ValueError, ZeroDivisionError):
            continue
        if rate > 0:
            return float(rate)
    return 0.0


def _duration(stream: dict[str, object], fmt: dict[str, object]) -> float:
    for raw in (stream.get("duration"), fmt.get("duration")):
        try:
            value = float(str(raw))
        except ValueError:
            continue
        if value > 0:
            return value
    return 0.0


def _last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no details"
