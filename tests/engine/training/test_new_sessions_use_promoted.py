"""A newly promoted version serves new sessions at once, in the same process (no restart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.annotation.sessions import CACHE, model_key
from engine.inference import registry
from engine.training import versions
from tests.engine.annotation._serving import clip_video
from tests.engine.training._training import model_settings, register_tiny

__all__ = ["model_settings"]
pytestmark = pytest.mark.django_db


def test_new_sessions_pick_up_a_newly_promoted_version(
    tmp_path: Path, model_settings, project, annotator, reviewer
) -> None:
    video = clip_video(project)
    first = register_tiny(tmp_path, "first", seed=1)
    versions.do_promote(None, first)
    loaded = registry.load_model()
    old_session = CACHE.get_or_create(video, annotator.pk, loaded)
    assert model_key(loaded) == f"test_tiny:{first.sha256}"

    second = register_tiny(tmp_path, "second", seed=2)
    versions.do_promote(None, second)

    # the next session (another annotator, or a new one) resolves the promoted version again
    reloaded = registry.load_model()
    new_session = CACHE.get_or_create(video, reviewer.pk, reloaded)
    assert reloaded.spec.model_version_id == second.pk
    assert model_key(reloaded) == f"test_tiny:{second.sha256}" != model_key(loaded)
    assert new_session.model_key == model_key(reloaded)
    assert new_session is not old_session
    assert registry.cached_model_keys() == [("test_tiny", second.sha256, "cpu")]
