"""``platform/`` is a source root: it must never shadow the standard library's ``platform``."""

import platform
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_platform_is_the_standard_library() -> None:
    # given the repository root and platform/ on sys.path (pytest pythonpath)
    assert str(REPO) in sys.path or "." in sys.path or "" in sys.path
    # then
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert callable(platform.system)


def test_platform_folder_is_not_a_package() -> None:
    assert (REPO / "platform").is_dir()
    assert not (REPO / "platform" / "__init__.py").exists()
