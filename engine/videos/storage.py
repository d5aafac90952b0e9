"""Object storage helpers over Django's default storage (local folder or S3)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.core.files.base import File
from django.core.files.storage import default_storage


def put_file(key: str, fileobj: IO[bytes]) -> str:
    """Write ``fileobj`` under exactly ``key`` (overwriting), return the key."""
    if default_storage.exists(key):
        default_storage.delete(key)
    saved = default_storage.save(key, File(fileobj))
    if saved != key:  # a storage that renames on collision would break derived keys
        raise RuntimeError(f"storage saved {key!r} as {saved!r}")
    return saved


def put_path(key: str, path: Path) -> str:
    with path.open("rb") as fh:
        return put_file(key, fh)


def download_to(key: str, dest: Path) -> Path:
    with default_storage.open(key, "rb") as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out, length=1024 * 1024)
    return dest


def read_bytes(key: str) -> bytes:
    with default_storage.open(key, "rb") as fh:
        data: bytes = fh.read()
        return data


def iter_keys(prefix: str) -> Iterator[str]:
    """Every key directly under ``prefix`` (a folder-like prefix ending in '/')."""
    try:
        _dirs, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in files:
        yield prefix + name


def delete_prefix(prefix: str) -> int:
    """Delete every object directly under ``prefix``; return how many were deleted."""
    count = 0
    for key in list(iter_keys(prefix)):
        default_storage.delete(key)
        count += 1
    return count


def delete_key(key: str) -> None:
    if key and default_storage.exists(key):
        default_storage.delete(key)


def exists(key: str) -> bool:
    return bool(key) and default_storage.exists(key)
