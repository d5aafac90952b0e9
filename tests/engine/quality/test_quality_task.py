"""The beat-scheduled quality sweep task: thin, idempotent, on the default queue."""

from __future__ import annotations

import pytest

from engine.models import QualityModel
from tests._quality import reviewed_examples
from workers.celery import app
from workers.tasks.quality import quality_sweep


def test_beat_schedules_the_quality_sweep_on_the_default_queue():
    entry = app.conf.beat_schedule["quality-sweep"]
    assert entry["task"] == "workers.quality_sweep" == quality_sweep.name
    assert entry["options"]["queue"] == "default"


@pytest.mark.django_db
def test_the_sweep_trains_once_enough_verdicts_exist(settings, project, annotator, reviewer):
    settings.QUALITY_MIN_VERDICTS_PER_CLASS = 3
    settings.QUALITY_RETRAIN_AFTER_VERDICTS = 5
    reviewed_examples(project, annotator, reviewer, per_class=2)
    assert quality_sweep()["trained"] == []
    reviewed_examples(project, annotator, reviewer, per_class=1)
    assert quality_sweep()["trained"] == [project.pk]
    assert quality_sweep()["trained"] == []  # idempotent: nothing new to learn from
    assert QualityModel.objects.filter(project=project).count() == 1
