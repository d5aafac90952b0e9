"""Two first reads of a revision's quality at once (the review page's quality panel for two
people, or a page and the quality sweep) both answer, and the revision gets one quality row.

Before the fix the row was created by "lock the row if it exists, else compute and insert":
with no row there is nothing to lock, both readers computed and inserted, and the second
insert broke the one-row-per-revision constraint (IntegrityError: a 500 on
``GET /api/masklets/<id>/quality/``). Runs where ``DATABASE_URL`` is PostgreSQL; SQLite
serialises write transactions, so the race cannot happen there."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from engine.accounts.projects import do_create_project, do_create_user, do_set_membership
from engine.models import RevisionQuality
from engine.quality import reports
from tests._masklets import ready_video, square, submitted_masklet

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
pytestmark = [
    pytest.mark.skipif(not ON_POSTGRES, reason="races need PostgreSQL (DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]
ROUNDS = 4


def _race(*readers: Callable[[], Any]) -> list[Any]:
    """Run the readers at the same moment, each in its own thread and connection."""
    barrier = threading.Barrier(len(readers))
    results: list[Any] = [None] * len(readers)

    def run(i: int, reader: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = reader()
        except BaseException as exc:  # reported through the result
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_first_quality_reads_both_answer_with_one_row() -> None:
    manager = do_create_user("q-manager", "q-pass-manager-1", "manager")
    author = do_create_user("q-author", "q-pass-author-1", "annotator")
    project = do_create_project("quality race", manager)
    do_set_membership(project, author, "annotator")
    video = ready_video(project, height=32, width=40, frame_count=6)
    for _ in range(ROUNDS):
        masks = {i: square(32, 40, 4 + i, 5 + i, 10) for i in range(6)}
        masklet = submitted_masklet(video, author, masks)
        read = functools.partial(reports.masklet_quality, masklet)
        answers = _race(read, read, read)
        failed = [a for a in answers if isinstance(a, BaseException)]
        assert not failed, failed
        assert len({a.jitter for a in answers}) == 1
        revision = masklet.current_revision
        assert RevisionQuality.objects.filter(revision=revision).count() == 1
