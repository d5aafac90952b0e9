"""The data migration that marks videos imported without frames (before ``no_frames``
existed) as ``no_frames`` and holds their queued masklets."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("engine", "0008_video_no_frames_status")]
AFTER = [("engine", "0009_fill_video_no_frames")]


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_old_frameless_ready_videos_become_no_frames_with_masklets_held():
    old = _migrate(BEFORE)
    User = old.get_model("engine", "User")
    Project = old.get_model("engine", "Project")
    Video = old.get_model("engine", "Video")
    Masklet = old.get_model("engine", "Masklet")
    user = User.objects.create(username="m")
    project = Project.objects.create(name="p", created_by=user)
    frameless = Video.objects.create(
        project=project, name="sav", status="ready", metadata={"has_frames": False}
    )
    decoded = Video.objects.create(project=project, name="ok.mp4", status="ready")
    queued = Masklet.objects.create(video=frameless, object_id=1, status="submitted")
    truth = Masklet.objects.create(video=frameless, object_id=2, status="verified")
    other = Masklet.objects.create(video=decoded, object_id=1, status="submitted")
    try:
        new = _migrate(AFTER)
        Video = new.get_model("engine", "Video")
        Masklet = new.get_model("engine", "Masklet")
        video = Video.objects.get(pk=frameless.pk)
        assert video.status == "no_frames"
        assert video.metadata["held_masklets"] == {str(queued.pk): "submitted"}
        assert Masklet.objects.get(pk=queued.pk).status == "draft"
        assert Masklet.objects.get(pk=truth.pk).status == "verified"
        assert Video.objects.get(pk=decoded.pk).status == "ready"
        assert Masklet.objects.get(pk=other.pk).status == "submitted"
        back = _migrate(BEFORE)
        assert back.get_model("engine", "Video").objects.get(pk=frameless.pk).status == "ready"
        assert back.get_model("engine", "Masklet").objects.get(pk=queued.pk).status == "submitted"
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
