"""Settings of the fault benchmark's processes: the real settings, plus tiny retraining rounds
(test_tiny, two frames, one correction click) so that 20 killed rounds fit in minutes."""

from __future__ import annotations

from dataengine.settings import *  # noqa: F403

ROUND_HOLDOUT_FRACTION = 0.0  # exactly one held-out video
ROUND_NUM_FRAMES = 2
ROUND_MAX_OBJECTS = 1
ROUND_EVAL_MAX_VIDEOS = 1
ROUND_BASE_LR = 3e-3
ROUND_VISION_LR = 1.5e-3
ROUND_TRAIN_OPTIONS = {"correction_clicks": 1, "correction_frames": 1, "init_cond_frames": 1}
