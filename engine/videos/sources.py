"""Where videos to import come from: a local folder or an ``s3://bucket/prefix``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from django.conf import settings


@dataclass(frozen=True)
class SourceFile:
    name: str
    size: int
    location: str  # path or s3 key, for messages

    def open(self) -> AbstractContextManager[IO[bytes]]:
        raise NotImplementedError


@dataclass(frozen=True)
class LocalFile(SourceFile):
    path: Path = Path()

    def open(self) -> AbstractContextManager[IO[bytes]]:
        return self.path.open("rb")


@dataclass(frozen=True)
class S3File(SourceFile):
    bucket: str = ""
    client: Any = None

    @contextmanager
    def _open(self) -> Iterator[IO[bytes]]:
        body = self.client.get_object(Bucket=self.bucket, Key=self.location)["Body"]
        try:
            yield body
        finally:
            body.close()

    def open(self) -> AbstractContextManager[IO[bytes]]:
        return self._open()


def s3_client() -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL or None,
        aws_access_key_id=settings.S3_ACCESS_KEY_ID or None,
        aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY or None,
        region_name=settings.S3_REGION,
    )


def list_source(source: str) -> list[SourceFile]:
    """The files directly inside a folder or under an S3 prefix (no recursion), sorted by name."""
    if source.startswith("s3://"):
        parsed = urlparse(source)
        bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
        if not bucket:
            raise ValueError(f"{source!r} names no bucket; use s3://bucket/prefix")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        client = s3_client()
        files: list[SourceFile] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        ):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name:
                    files.append(
                        S3File(
                            name=name,
                            size=obj["Size"],
                            location=obj["Key"],
                            bucket=bucket,
                            client=client,
                        )
                    )
        return sorted(files, key=lambda f: f.name)
    folder = Path(source)
    if not folder.is_dir():
        raise ValueError(f"{source!r} is not a folder or an s3://bucket/prefix")
    return [
        LocalFile(name=p.name, size=p.stat().st_size, location=str(p), path=p)
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".")
    ]
