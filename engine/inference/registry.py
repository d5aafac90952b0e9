"""Which SAM 2 model a worker runs, and one loaded copy of it per process.

Resolution order (DESIGN.md sections 3 and 5.6):

1. the promoted :class:`engine.models.ModelVersion`: its config name and the checkpoint stored under
   its ``checkpoint_key`` (copied once to a local cache folder named by its sha256);
2. ``settings.SAM2_CHECKPOINT``: a local checkpoint file (config from ``settings.SAM2_CONFIG``) or
   an official SAM 2.1 name such as ``sam2.1_hiera_tiny`` (looked up in
   ``settings.SAM2_CHECKPOINT_DIR``; official weights are never downloaded implicitly);
3. otherwise :class:`ModelNotConfigured`, whose message names what to set.

Loaded models are cached per process by ``(config, sha256, device)``, so a newly promoted model is
picked up by the next job while jobs on the same model share one copy.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from django.conf import settings
from django.core.files.storage import default_storage

from engine.errors import Unavailable
from engine.models import ModelVersion
from engine.videos import storage
from model.config import CONFIGS

if TYPE_CHECKING:
    from model.sam2_base import Sam2Model

# torch and the model code are imported inside the functions that load weights: the web process
# resolves the spec (to refuse a job early) without loading torch.

ModelSource = Literal["promoted", "path", "official"]


class ModelNotConfigured(Unavailable):
    """No usable model: nothing promoted and no (valid) checkpoint setting."""


@dataclass(frozen=True)
class ModelSpec:
    """Where the weights come from; enough to load them and to key the process cache.

    Attributes:
        config: a name of ``model.config.CONFIGS``.
        sha256: hex digest of the checkpoint file.
        source: "promoted" (a ModelVersion), "path" (SAM2_CHECKPOINT file) or "official".
        location: the storage key (promoted) or the local file path (path / official).
        model_version_id: the ModelVersion's id for "promoted", else None.
    """

    config: str
    sha256: str
    source: ModelSource
    location: str
    model_version_id: int | None = None

    def describe(self) -> str:
        if self.source == "promoted":
            return f"promoted model version {self.model_version_id} ({self.config})"
        return f"{self.source} checkpoint {self.location} ({self.config})"


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    model: Sam2Model
    device: str


_cache: OrderedDict[tuple[str, str, str], LoadedModel] = OrderedDict()
_lock = threading.Lock()
# sha256 of local files by (path, size, mtime): hashing a large checkpoint once per process
_file_digests: dict[tuple[str, int, int], str] = {}


def _how_to_configure() -> str:
    from model.download import OFFICIAL_CHECKPOINTS

    return (
        "promote a ModelVersion, or set SAM2_CHECKPOINT to a checkpoint file (with SAM2_CONFIG "
        "naming its config) or to an official name ("
        + ", ".join(OFFICIAL_CHECKPOINTS)
        + ") downloaded into SAM2_CHECKPOINT_DIR with `python -m model download NAME --dest DIR`"
    )


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_config_name(name: str, where: str) -> str:
    if name not in CONFIGS:
        known = ", ".join(sorted(CONFIGS))
        raise ModelNotConfigured(f"{where}: unknown model config {name!r}; known configs: {known}")
    return name


def _local_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _file_digests.get(key)
    if digest is None:
        digest = sha256_file(path)
        _file_digests[key] = digest
    return digest


def resolve_model_spec() -> ModelSpec:
    """The model a worker should run now (see the module docstring); loads nothing.

    Raises:
        ModelNotConfigured: with a message naming the settings to fix.
    """
    promoted = ModelVersion.objects.filter(status=ModelVersion.Status.PROMOTED).first()
    if promoted is not None:
        where = f"promoted model version {promoted.pk} ({promoted.name!r})"
        if not promoted.checkpoint_key:
            raise ModelNotConfigured(f"{where} has no checkpoint_key; store its checkpoint first")
        if not promoted.sha256:
            raise ModelNotConfigured(f"{where} has no sha256; record the checkpoint's digest")
        return ModelSpec(
            config=_check_config_name(promoted.config, where),
            sha256=promoted.sha256.strip().lower(),
            source="promoted",
            location=promoted.checkpoint_key,
            model_version_id=promoted.pk,
        )
    setting = str(getattr(settings, "SAM2_CHECKPOINT", "") or "").strip()
    if not setting:
        raise ModelNotConfigured(f"No SAM 2 model is configured: {_how_to_configure()}")
    path = Path(setting).expanduser()
    if path.is_file():
        config = str(getattr(settings, "SAM2_CONFIG", "") or "").strip()
        if not config:
            raise ModelNotConfigured(
                f"SAM2_CHECKPOINT is the file {path}; set SAM2_CONFIG to its config name "
                f"(one of {', '.join(sorted(CONFIGS))})"
            )
        return ModelSpec(
            config=_check_config_name(config, "SAM2_CONFIG"),
            sha256=_local_sha256(path),
            source="path",
            location=str(path),
        )
    from model.download import OFFICIAL_CHECKPOINTS, resolve_checkpoint_name

    try:
        name = resolve_checkpoint_name(setting)
    except ValueError:
        raise ModelNotConfigured(
            f"SAM2_CHECKPOINT={setting!r} is neither an existing file nor an official checkpoint "
            f"name; {_how_to_configure()}"
        ) from None
    entry = OFFICIAL_CHECKPOINTS[name]
    folder = str(getattr(settings, "SAM2_CHECKPOINT_DIR", "") or "").strip()
    if not folder:
        raise ModelNotConfigured(
            f"SAM2_CHECKPOINT names the official checkpoint {name}; set SAM2_CHECKPOINT_DIR to "
            f"the folder holding {entry.filename}"
        )
    file = Path(folder).expanduser() / entry.filename
    if not file.is_file():
        raise ModelNotConfigured(
            f"{file} does not exist; download it with `python -m model download {name} "
            f"--dest {folder}` (official weights are only downloaded on request)"
        )
    return ModelSpec(
        config=entry.config_name, sha256=entry.sha256, source="official", location=str(file)
    )


def model_device() -> str:
    """``settings.SAM2_DEVICE``, default "auto": CUDA when present, else CPU."""
    import torch

    device = str(getattr(settings, "SAM2_DEVICE", "auto") or "auto").strip()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _cache_dir() -> Path:
    folder = str(getattr(settings, "SAM2_CACHE_DIR", "") or "").strip()
    path = Path(folder) if folder else Path(tempfile.gettempdir()) / "dataengine-models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _local_checkpoint(spec: ModelSpec) -> Path:
    """A local file holding the spec's checkpoint (promoted ones are copied from storage once)."""
    if spec.source != "promoted":
        return Path(spec.location)
    target = _cache_dir() / f"{spec.sha256}.pt"
    if target.is_file() and _local_sha256(target) == spec.sha256:
        return target
    if not default_storage.exists(spec.location):
        raise ModelNotConfigured(
            f"{spec.describe()}: its checkpoint {spec.location!r} is not in storage"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=".ckpt-", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with open(fd, "wb") as out, default_storage.open(spec.location, "rb") as src:
            shutil.copyfileobj(src, out, length=1 << 20)
        actual = sha256_file(tmp)
        if actual != spec.sha256:
            raise ModelNotConfigured(
                f"{spec.describe()} does not load: sha256 mismatch, the stored file "
                f"{spec.location!r} has {actual}, the version records {spec.sha256}"
            )
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def load_model(spec: ModelSpec | None = None, device: str | None = None) -> LoadedModel:
    """The spec's model (default: :func:`resolve_model_spec`), built once per process.

    Keeps at most ``settings.SAM2_MODEL_CACHE_SIZE`` (default 1) models; the least recently used
    is dropped first. The checkpoint's sha256 is verified before loading. A positive
    ``settings.SAM2_TORCH_THREADS`` sets torch's intra-op thread count.

    Raises:
        ModelNotConfigured: nothing usable configured, the file is missing, or it does not load
            (wrong digest, wrong format, keys that do not match the config).
    """
    import torch

    from model.build import build_sam2
    from model.checkpoint import CheckpointError

    spec = spec or resolve_model_spec()
    device = device or model_device()
    threads = int(getattr(settings, "SAM2_TORCH_THREADS", 0) or 0)
    if threads > 0:  # CPU workers sharing a machine: a small pool avoids threads spinning
        torch.set_num_threads(threads)
    key = (spec.config, spec.sha256, device)
    with _lock:
        loaded = _cache.get(key)
        if loaded is not None:
            _cache.move_to_end(key)
            return loaded
        path = _local_checkpoint(spec)
        try:
            net = build_sam2(spec.config, path, device=device, expected_sha256=spec.sha256)
        except CheckpointError as exc:
            raise ModelNotConfigured(f"{spec.describe()} does not load: {exc}") from exc
        loaded = LoadedModel(spec=spec, model=net, device=device)
        _cache[key] = loaded
        limit = max(1, int(getattr(settings, "SAM2_MODEL_CACHE_SIZE", 1)))
        while len(_cache) > limit:
            _cache.popitem(last=False)
        return loaded


def clear_model_cache() -> None:
    """Forget every loaded model (tests; a worker that must free GPU memory)."""
    with _lock:
        _cache.clear()


def cached_model_keys() -> list[tuple[str, str, str]]:
    """``(config, sha256, device)`` of the models held by this process, oldest first."""
    with _lock:
        return list(_cache)


def store_checkpoint_for_version(version: ModelVersion, local_path: Path) -> ModelVersion:
    """Upload a checkpoint file for ``version`` (key derived from its id) and record its sha256."""
    key = f"models/{version.pk}/checkpoint.pt"
    storage.put_path(key, local_path)
    version.checkpoint_key = key
    version.sha256 = sha256_file(local_path)
    version.save(update_fields=["checkpoint_key", "sha256"])
    return version
