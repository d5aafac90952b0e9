"""Strict parsing of environment variables: a bad value stops start-up with a message naming it."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """Return ``$NAME``, or the contents of the file named by ``$NAME_FILE`` (for secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- SECRET_KEY ---------------------------------------------------------------------------------

SECRET_KEY_MIN_LENGTH = 50
# Placeholder markers: Django's startproject prefix and the words people put in example keys.
_PLACEHOLDER_MARKERS = ("django-insecure", "insecure", "change-me", "changeme", "change_me")
DEMO_SECRET_KEY_FILE = "secret_key"


def check_secret_key(key: str, origin: str = "SECRET_KEY") -> str:
    """Refuse a key that is short, low-entropy or a known placeholder; return it otherwise."""
    advice = (
        f"use a random string of at least {SECRET_KEY_MIN_LENGTH} characters, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`"
    )
    if len(key) < SECRET_KEY_MIN_LENGTH:
        raise ImproperlyConfigured(f"{origin} is too short ({len(key)} characters): {advice}")
    lowered = key.lower()
    if len(set(key)) < 5 or any(marker in lowered for marker in _PLACEHOLDER_MARKERS):
        raise ImproperlyConfigured(f"{origin} is a known default or placeholder value: {advice}")
    return key


def env_secret_key(*, demo_mode: bool, data_dir: Path) -> str:
    """``SECRET_KEY`` (or ``SECRET_KEY_FILE``), required outside demo mode.

    In demo mode with no key, a random key is generated once and kept in
    ``DATA_DIR/secret_key`` (mode 0600), so sessions survive restarts and the web process and the
    worker share it.
    """
    key = env_str("SECRET_KEY", "").strip()
    if key:
        return check_secret_key(key)
    if not demo_mode:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: set SECRET_KEY (or SECRET_KEY_FILE) to a random string of at "
            f"least {SECRET_KEY_MIN_LENGTH} characters, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`; "
            "for a local demo on this machine only, set DEMO_MODE=1 (as `make run` does)"
        )
    return _demo_secret_key(data_dir / DEMO_SECRET_KEY_FILE)


def _demo_secret_key(path: Path) -> str:
    if not path.exists():
        # Write a private temporary file, then link it into place: the link fails if another
        # process (web or worker starting at the same moment) got there first, and then both
        # read the same key.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(64) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ImproperlyConfigured(
            f"{path} (the demo SECRET_KEY) is readable by others (mode {mode:04o}): "
            f"run `chmod 600 {path}`"
        )
    return check_secret_key(path.read_text().strip(), origin=str(path))
