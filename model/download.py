"""Registry and verified download of the official SAM 2.1 checkpoints.

Nothing here runs at import time or in tests against the network: `download_checkpoint` takes an
`opener` (default `urllib.request.urlopen`), so tests serve a local file.

Where the sha256 values come from: Meta does not publish them. They equal the Git LFS object ids
of the Hugging Face mirrors recorded in shared/reference/sam2.md section 8.2 (prefixes) and the
full values pinned by independent public projects (e.g. micro-sam's SAM 2 model registry, several
deployment scripts checking `sam2.1_hiera_large.pt` = 898,083,611 bytes with the same hash). They
were not re-checked against a real download here (no network on this machine).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from model.checkpoint import ChecksumMismatchError, sha256_file

_CHUNK = 1 << 20
_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"


@dataclass(frozen=True)
class OfficialCheckpoint:
    """One official checkpoint file: where it is, its sha256 and size, and its config name."""

    url: str
    sha256: str
    config_name: str
    size_bytes: int

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    "sam2.1_hiera_tiny": OfficialCheckpoint(
        url=f"{_BASE_URL}/sam2.1_hiera_tiny.pt",
        sha256="7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
        config_name="sam2.1_hiera_t",
        size_bytes=156_008_466,
    ),
    "sam2.1_hiera_small": OfficialCheckpoint(
        url=f"{_BASE_URL}/sam2.1_hiera_small.pt",
        sha256="6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
        config_name="sam2.1_hiera_s",
        size_bytes=184_416_285,
    ),
    "sam2.1_hiera_base_plus": OfficialCheckpoint(
        url=f"{_BASE_URL}/sam2.1_hiera_base_plus.pt",
        sha256="a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
        config_name="sam2.1_hiera_b+",
        size_bytes=323_606_802,
    ),
    "sam2.1_hiera_large": OfficialCheckpoint(
        url=f"{_BASE_URL}/sam2.1_hiera_large.pt",
        sha256="2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
        config_name="sam2.1_hiera_l",
        size_bytes=898_083_611,
    ),
}

ProgressCallback = Callable[[int, int | None], None]
Opener = Callable[..., Any]


def resolve_checkpoint_name(name: str) -> str:
    """Registry key for `name`: a registry key ("sam2.1_hiera_tiny"), a file name
    ("sam2.1_hiera_tiny.pt") or a config name ("sam2.1_hiera_t")."""
    if name in OFFICIAL_CHECKPOINTS:
        return name
    for key, entry in OFFICIAL_CHECKPOINTS.items():
        if name in (entry.filename, entry.config_name):
            return key
    known = ", ".join(OFFICIAL_CHECKPOINTS)
    raise ValueError(f"unknown checkpoint {name!r}; known checkpoints: {known}")


def _content_length(response: Any) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def download_checkpoint(
    name: str,
    dest_dir: str | Path,
    *,
    opener: Opener = urllib.request.urlopen,
    expected_sha256: str | None = None,
    url: str | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> Path:
    """Download the official checkpoint `name` into `dest_dir`; return the file's path.

    Streams to a temporary file in `dest_dir`, checks the sha256 (the registry's unless
    `expected_sha256` is given), then renames atomically. On a bad hash or any error the
    temporary file is removed and nothing is left behind. An existing file with the right hash
    is reused unless `overwrite`. `progress(done_bytes, total_bytes_or_None)` is called per
    chunk. `url` overrides the registry URL (mirrors, tests with file:// URLs).
    """
    entry = OFFICIAL_CHECKPOINTS[resolve_checkpoint_name(name)]
    want = (expected_sha256 or entry.sha256).strip().lower()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / entry.filename

    if target.exists() and not overwrite and sha256_file(target) == want:
        return target

    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out, opener(url or entry.url) as response:
            total = _content_length(response)
            done = 0
            body: IO[bytes] = response
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        actual = digest.hexdigest()
        if actual != want:
            raise ChecksumMismatchError(
                f"sha256 mismatch for {entry.filename}: expected {want}, got {actual}; "
                "the download was discarded"
            )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def _print_progress(done: int, total: int | None) -> None:
    if total:
        print(f"\r{done / 1e6:8.1f} / {total / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)
    else:
        print(f"\r{done / 1e6:8.1f} MB", end="", file=sys.stderr, flush=True)


def download_main(argv: Sequence[str] | None = None) -> int:
    """CLI: `download NAME --dest DIR [--sha256 HEX] [--url URL] [--overwrite]`.

    Prints the checkpoint's path; returns the process exit status (0 ok, 1 error, 2 usage).
    """
    parser = argparse.ArgumentParser(
        prog="python -m model download", description="Download an official SAM 2.1 checkpoint."
    )
    parser.add_argument("name", help="one of: " + ", ".join(OFFICIAL_CHECKPOINTS))
    parser.add_argument("--dest", required=True, help="destination folder")
    parser.add_argument("--sha256", default=None, help="expected sha256 (default: registry's)")
    parser.add_argument("--url", default=None, help="download from this URL instead")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    try:
        path = download_checkpoint(
            args.name,
            args.dest,
            expected_sha256=args.sha256,
            url=args.url,
            progress=None if args.quiet else _print_progress,
            overwrite=args.overwrite,
        )
    except (ValueError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(file=sys.stderr)
    print(path)
    return 0
