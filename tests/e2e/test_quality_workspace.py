"""In real Chromium: the annotator's workspace marks, on an object's timeline row, the frames
the quality checks suggest correcting in its draft (GET /api/masklets/<id>/quality/?draft=1)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.annotation import leases
from engine.masklets.revisions import FrameMask, do_create_masklet
from engine.masks.rle import encode_rle
from engine.models import Job
from engine.videos import ingest
from tests.e2e._workspace import wait_ready
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_workspace_timeline_marks_the_frames_to_check(
    page, project, manager, annotator, small_clip
):
    # given a real ingested clip and a draft object lost on frame 5 of its track
    with small_clip.open("rb") as fh:
        video = ingest.do_upload_video(project, manager, "p.mp4", fh, small_clip.stat().st_size)
    ingest.run_ingest_job(Job.objects.get(video=video).pk)
    video.refresh_from_db()
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    height, width = int(video.height or 0), int(video.width or 0)
    frames = {}
    for i in range(video.frame_count):
        mask = np.zeros((height, width), dtype=bool)
        mask[60:140, 40 + 5 * i : 120 + 5 * i] = True
        frames[i] = FrameMask(None if i == 5 else encode_rle(mask), "click")
    masklet = do_create_masklet(video, author=annotator, frames=frames, label="box")

    # when the annotator opens the workspace
    log_in(page, "alice", "alice-pass")
    page.goto(f"/annotate/{lease.pk}/")
    wait_ready(page)

    # then the object's row carries the mark once the quality answer arrived
    row = f".tl-row[data-masklet='{masklet.pk}']"
    page.wait_for_selector(f"{row}[data-suspect='5']")
