"""Official checkpoint registry and verified downloads (served locally, never the network)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from model.build import build_sam2
from model.checkpoint import ChecksumMismatchError, save_checkpoint
from model.config import CONFIGS
from model.download import (
    OFFICIAL_CHECKPOINTS,
    download_checkpoint,
    download_main,
    resolve_checkpoint_name,
)
from model.sam2_base import Sam2Model


def test_registry_is_complete() -> None:
    assert set(OFFICIAL_CHECKPOINTS) == {
        "sam2.1_hiera_tiny",
        "sam2.1_hiera_small",
        "sam2.1_hiera_base_plus",
        "sam2.1_hiera_large",
    }
    configs = set()
    for name, entry in OFFICIAL_CHECKPOINTS.items():
        assert entry.url == f"https://dl.fbaipublicfiles.com/segment_anything_2/092824/{name}.pt"
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.config_name in CONFIGS
        assert entry.size_bytes > 100_000_000
        configs.add(entry.config_name)
    assert configs == {"sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"}
    # prefixes recorded in shared/reference/sam2.md section 8.2 (Hugging Face LFS object ids)
    assert OFFICIAL_CHECKPOINTS["sam2.1_hiera_tiny"].sha256.startswith("7402e0d8")
    assert OFFICIAL_CHECKPOINTS["sam2.1_hiera_large"].sha256.startswith("2647878d")


def test_name_aliases_and_unknown_names() -> None:
    assert resolve_checkpoint_name("sam2.1_hiera_t") == "sam2.1_hiera_tiny"
    assert resolve_checkpoint_name("sam2.1_hiera_b+") == "sam2.1_hiera_base_plus"
    assert resolve_checkpoint_name("sam2.1_hiera_large.pt") == "sam2.1_hiera_large"
    with pytest.raises(ValueError, match="known checkpoints: sam2.1_hiera_tiny"):
        resolve_checkpoint_name("sam3_huge")


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


@pytest.fixture
def served_checkpoint(tmp_path: Path, tiny_model: Sam2Model) -> tuple[bytes, str]:
    """A checkpoint in the official format (tiny weights) and its sha256."""
    path = tmp_path / "source.pt"
    digest = save_checkpoint(tiny_model, path)
    return path.read_bytes(), digest


def test_download_with_fake_opener_verifies_and_loads(
    tmp_path: Path, served_checkpoint: tuple[bytes, str], tiny_model: Sam2Model
) -> None:
    data, digest = served_checkpoint
    requested: list[str] = []
    progress: list[tuple[int, int | None]] = []

    def opener(url: str) -> FakeResponse:
        requested.append(url)
        return FakeResponse(data)

    dest = tmp_path / "weights"
    path = download_checkpoint(
        "sam2.1_hiera_tiny",
        dest,
        opener=opener,
        expected_sha256=digest,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert requested == [OFFICIAL_CHECKPOINTS["sam2.1_hiera_tiny"].url]
    assert path == dest / "sam2.1_hiera_tiny.pt"
    assert path.read_bytes() == data
    assert sorted(p.name for p in dest.iterdir()) == ["sam2.1_hiera_tiny.pt"]
    assert progress[-1] == (len(data), len(data))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    loaded = build_sam2("test_tiny", path, expected_sha256=digest)
    assert torch.equal(loaded.no_mem_embed, tiny_model.no_mem_embed)

    # a second call finds the verified file and does not download again
    assert (
        download_checkpoint("sam2.1_hiera_tiny", dest, opener=opener, expected_sha256=digest)
        == path
    )
    assert len(requested) == 1


def test_bad_hash_leaves_nothing_behind(
    tmp_path: Path, served_checkpoint: tuple[bytes, str]
) -> None:
    data, _ = served_checkpoint
    dest = tmp_path / "weights"
    with pytest.raises(ChecksumMismatchError, match="sha256 mismatch .*discarded"):
        # the registry's real hash cannot match our tiny file
        download_checkpoint("sam2.1_hiera_tiny", dest, opener=lambda url: FakeResponse(data))
    assert list(dest.iterdir()) == []


def test_interrupted_download_leaves_nothing_behind(tmp_path: Path) -> None:
    class Broken(FakeResponse):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 0:
                raise ConnectionResetError("peer went away")
            return super().read(4)

    dest = tmp_path / "weights"
    with pytest.raises(ConnectionResetError):
        download_checkpoint("sam2.1_hiera_small", dest, opener=lambda url: Broken(b"x" * 100))
    assert list(dest.iterdir()) == []


def test_file_url_with_urllib_and_cli(
    tmp_path: Path, served_checkpoint: tuple[bytes, str], capsys: Any
) -> None:
    data, digest = served_checkpoint
    source = tmp_path / "mirror.pt"
    source.write_bytes(data)
    dest = tmp_path / "cli"
    status = download_main(
        [
            "sam2.1_hiera_t",
            "--dest",
            str(dest),
            "--url",
            source.as_uri(),
            "--sha256",
            digest,
            "--quiet",
        ]
    )
    assert status == 0
    assert capsys.readouterr().out.strip() == str(dest / "sam2.1_hiera_tiny.pt")
    assert (dest / "sam2.1_hiera_tiny.pt").read_bytes() == data

    status = download_main(
        ["sam2.1_hiera_t", "--dest", str(tmp_path / "bad"), "--url", source.as_uri(), "--quiet"]
    )
    assert status == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    assert list((tmp_path / "bad").iterdir()) == []
    assert download_main(["nope", "--dest", str(dest), "--quiet"]) == 1
