"""What a round trains on: a verified masklet's frames as clips (engine.training.data)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.datasets.snapshots import do_create_snapshot
from engine.simulation.procedural import make_videos
from engine.training.data import snapshot_clips
from tests.engine.training._round_data import SPEC, verified_procedural_videos
from tests.engine.training._training import model_settings  # noqa: F401

pytestmark = pytest.mark.usefixtures("model_settings")


def _clip(project: Any, annotator: Any, reviewer: Any, **kwargs: Any) -> Any:
    [video] = verified_procedural_videos(project, annotator, reviewer, 1, first_seed=7, **kwargs)
    [clip] = snapshot_clips(do_create_snapshot(project), [video.pk])
    return clip


def test_a_masklet_made_here_labels_its_frames_without_a_mask_as_absent(
    project, annotator, reviewer
) -> None:
    # as a phase 1 annotator leaves it: no entry where the object is out of view
    clip = _clip(project, annotator, reviewer, masked_frames={0, 1, 4})

    assert clip.frame_indices == (0, 1, 2, 3, 4)
    truth = make_videos(7, 1, SPEC)[0].masks[0]
    assert np.array_equal(clip.masks[0, [0, 1, 4]], truth[[0, 1, 4]])
    assert not clip.masks[0, 2].any()
    assert not clip.masks[0, 3].any()


def test_an_imported_masklet_labels_only_the_frames_its_source_annotated(
    project, annotator, reviewer
) -> None:
    clip = _clip(project, annotator, reviewer, masked_frames={0, 2, 4}, source="import")

    assert clip.frame_indices == (0, 2, 4)
    truth = make_videos(7, 1, SPEC)[0].masks[0]
    assert np.array_equal(clip.masks[0], truth[[0, 2, 4]])
