"""Model versions: register a checkpoint as a candidate, promote one, roll back, lineage.

A version's checkpoint lives in default storage under a key derived from its sha256
(``models/sha256/<hex>.pt``), so the same weights are stored once and a changed file can never
pass for the recorded one. Workers load the promoted version through
:mod:`engine.inference.registry`, which checks the hash again before loading: a checkpoint
corrupted in storage is refused there, and here on promotion.

Exactly one version is promoted at a time (a database constraint); every promotion and rollback
is recorded as a :class:`~engine.models.ModelPromotion`, which is how a rollback knows what
served before.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.inference import registry
from engine.models import Membership, ModelPromotion, ModelVersion, User
from engine.videos import storage
from model.config import CONFIGS

MAX_NAME_CHARS = 200
MAX_LINEAGE = 50


class InvalidCheckpoint(InvalidInput):
    """The file is not a checkpoint of the named config (format, keys or shapes)."""


class CorruptCheckpoint(Conflict):
    """The stored checkpoint's sha256 is not the one the version records."""


# --- who may do what ---------------------------------------------------------------------------


def can_manage_models(user: User) -> bool:
    """Site managers and admins register, promote and roll back (versions serve every project)."""
    return user.is_manager


def check_may_view_models(user: User) -> None:
    """Managers and any project member see the versions; other accounts get 403."""
    if can_manage_models(user) or Membership.objects.filter(user=user).exists():
        return
    raise PermissionDenied("Only project members and managers see the model versions")


def check_may_manage_models(user: User | None) -> None:
    """``None`` is the system (rounds, ``manage.py ensure_model``)."""
    if user is not None and not can_manage_models(user):
        raise PermissionDenied("Only managers may register, promote or roll back model versions")


def versions_for_user(user: User) -> QuerySet[ModelVersion]:
    check_may_view_models(user)
    return ModelVersion.objects.select_related("parent")


def access_version(user: User, version_id: int) -> ModelVersion:
    try:
        return versions_for_user(user).get(pk=version_id)
    except ModelVersion.DoesNotExist:
        raise NotFound("No such model version") from None


# --- checkpoints -------------------------------------------------------------------------------


def checkpoint_key(sha256: str) -> str:
    return f"models/sha256/{sha256}.pt"


def check_config_name(config: str) -> str:
    if config not in CONFIGS:
        raise InvalidInput(f"unknown model config {config!r}; known: {', '.join(sorted(CONFIGS))}")
    return config


def validate_checkpoint(path: Path, config: str) -> None:
    """Raise :class:`InvalidCheckpoint` unless ``path`` loads strictly into ``config``'s model:
    a ``{"model": state_dict}`` file with exactly the model's keys and shapes. The model is
    built on the meta device, so checking allocates no weights."""
    import torch

    from model.checkpoint import CheckpointError, check_state_dict, read_state_dict
    from model.config import get_config
    from model.sam2_base import Sam2Model

    check_config_name(config)
    with torch.device("meta"):
        skeleton = Sam2Model(get_config(config))
    try:
        check_state_dict(skeleton, read_state_dict(path))
    except CheckpointError as exc:
        raise InvalidCheckpoint(f"not a checkpoint of {config}: {exc}") from None


def stored_sha256(key: str) -> str:
    """sha256 of the object stored under ``key`` (streamed)."""
    digest = hashlib.sha256()
    with default_storage.open(key, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_stored_checkpoint(version: ModelVersion) -> None:
    """Raise :class:`CorruptCheckpoint` unless the version's stored file has its sha256."""
    if not version.checkpoint_key or not version.sha256:
        raise CorruptCheckpoint(f"model version {version.name!r} has no stored checkpoint")
    if not default_storage.exists(version.checkpoint_key):
        raise CorruptCheckpoint(f"the checkpoint of {version.name!r} is missing from storage")
    actual = stored_sha256(version.checkpoint_key)
    if actual != version.sha256:
        raise CorruptCheckpoint(
            f"the stored checkpoint of {version.name!r} is corrupt: sha256 {actual}, "
            f"recorded {version.sha256}; it will not be loaded"
        )


def do_register_checkpoint(
    user: User | None,
    path: Path,
    *,
    name: str,
    config: str,
    parent: ModelVersion | None = None,
    metrics: Mapping[str, Any] | None = None,
    training_snapshot: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Validate the checkpoint file, store it under its sha256 key and add a candidate version.

    Raises:
        PermissionDenied: ``user`` is not a manager. InvalidInput: bad name or config, or not a
        checkpoint of the config. Conflict: the name is taken.
    """
    check_may_manage_models(user)
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise InvalidInput(f"a version needs a name of 1 to {MAX_NAME_CHARS} characters")
    if ModelVersion.objects.filter(name=name).exists():
        raise Conflict(f"a model version named {name!r} exists; choose another name")
    validate_checkpoint(path, config)
    digest = registry.sha256_file(path)
    key = checkpoint_key(digest)
    if not default_storage.exists(key) or stored_sha256(key) != digest:
        storage.put_path(key, path)
    try:
        with transaction.atomic():
            return ModelVersion.objects.create(
                name=name,
                config=config,
                checkpoint_key=key,
                sha256=digest,
                parent=parent,
                metrics=dict(metrics or {}),
                training_snapshot=dict(training_snapshot or {}),
            )
    except IntegrityError:
        raise Conflict(f"a model version named {name!r} exists; choose another name") from None


def do_register_upload(
    user: User | None, fileobj: Any, *, name: str, config: str, parent: ModelVersion | None = None
) -> ModelVersion:
    """:func:`do_register_checkpoint` for an uploaded file object (spooled to a temporary file)."""
    check_may_manage_models(user)
    with tempfile.TemporaryDirectory(prefix="ckpt-upload-") as folder:
        path = Path(folder) / "checkpoint.pt"
        with path.open("wb") as out:
            shutil.copyfileobj(fileobj, out, length=1 << 20)
        return do_register_checkpoint(user, path, name=name, config=config, parent=parent)


def do_register_stored(
    user: User | None, key: str, *, name: str, config: str, parent: ModelVersion | None = None
) -> ModelVersion:
    """Register a checkpoint already in default storage (e.g. uploaded to S3 directly)."""
    check_may_manage_models(user)
    if not key or key.startswith("/") or ".." in key.split("/") or not default_storage.exists(key):
        raise InvalidInput(f"no object {key!r} in storage")
    with tempfile.TemporaryDirectory(prefix="ckpt-stored-") as folder:
        path = storage.download_to(key, Path(folder) / "checkpoint.pt")
        return do_register_checkpoint(user, path, name=name, config=config, parent=parent)


# --- promotion and rollback --------------------------------------------------------------------


def promoted_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.PROMOTED).first()


def _switch(
    user: User | None, target: ModelVersion, action: str, reason: str
) -> tuple[ModelVersion, ModelVersion | None]:
    """Make ``target`` the promoted version (caller holds the locks); the old one retires."""
    current = (
        ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.PROMOTED).first()
    )
    if current is not None and current.pk == target.pk:
        raise Conflict(f"{target.name!r} is already the promoted version")
    check_stored_checkpoint(target)
    if current is not None:
        current.status = ModelVersion.Status.RETIRED
        current.save(update_fields=["status"])
    target.status = ModelVersion.Status.PROMOTED
    target.save(update_fields=["status"])
    ModelPromotion.objects.create(
        version=target, previous=current, action=action, reason=reason[:500], by=user
    )
    return target, current


@transaction.atomic
def do_promote(user: User | None, version: ModelVersion, *, reason: str = "") -> ModelVersion:
    """Promote ``version`` (its stored checkpoint must match its sha256); the promoted one
    retires. Locks the promoted row and the version's row; new sessions pick it up (the
    registry resolves the promoted version per job or session)."""
    check_may_manage_models(user)
    target = ModelVersion.objects.select_for_update().get(pk=version.pk)
    promoted, _ = _switch(user, target, ModelPromotion.Action.PROMOTE, reason or "promoted")
    return promoted


def rollback_target(current: ModelVersion | None) -> ModelVersion | None:
    """The version that served before ``current`` was promoted (None if there is none)."""
    if current is None:
        return None
    event = (
        ModelPromotion.objects.filter(version=current, action=ModelPromotion.Action.PROMOTE)
        .select_related("previous")
        .first()
    )
    return event.previous if event is not None else None


@transaction.atomic
def do_rollback(user: User | None, *, reason: str = "") -> ModelVersion:
    """Re-promote the version that served before the current one; the current one retires.
    Repeated rollbacks walk further back through the promotion history.

    Raises:
        Conflict: nothing is promoted, or nothing served before it.
    """
    check_may_manage_models(user)
    current = (
        ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.PROMOTED).first()
    )
    target = rollback_target(current)
    if current is None or target is None:
        raise Conflict("there is no earlier promoted version to roll back to")
    target = ModelVersion.objects.select_for_update().get(pk=target.pk)
    promoted, _ = _switch(
        user, target, ModelPromotion.Action.ROLLBACK, reason or f"rolled back from {current.name}"
    )
    return promoted


# --- reading -----------------------------------------------------------------------------------


def lineage(version: ModelVersion) -> list[ModelVersion]:
    """``version`` and its ancestors, newest first (bounded, cycles cut)."""
    chain = [version]
    seen = {version.pk}
    node = version
    while node.parent_id is not None and len(chain) < MAX_LINEAGE:
        parent = ModelVersion.objects.filter(pk=node.parent_id).first()
        if parent is None or parent.pk in seen:
            break
        chain.append(parent)
        seen.add(parent.pk)
        node = parent
    return chain


def is_demo(version: ModelVersion) -> bool:
    return bool((version.metrics or {}).get("demo"))


def version_summary(version: ModelVersion) -> dict[str, Any]:
    """JSON-safe description used by the pages and the API."""
    return {
        "id": version.pk,
        "name": version.name,
        "config": version.config,
        "status": version.status,
        "sha256": version.sha256,
        "checkpoint_key": version.checkpoint_key,
        "parent": version.parent_id,
        "lineage": [v.pk for v in lineage(version)][1:],
        "metrics": version.metrics or {},
        "training_snapshot": version.training_snapshot or {},
        "demo": is_demo(version),
        "created_at": version.created_at.isoformat() if version.created_at else None,
    }


def promotion_history(limit: int = 50) -> list[ModelPromotion]:
    return list(ModelPromotion.objects.select_related("version", "previous", "by")[:limit])
