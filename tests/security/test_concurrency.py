"""Concurrent writers on PostgreSQL (row locks and conditional updates): exactly one wins, the
other gets a conflict, never a silent overwrite. Each race starts its writers together at a
barrier, each in its own thread and database connection, and is repeated.

They run where ``DATABASE_URL`` is PostgreSQL (as ``.ci/run`` sets it); SQLite serialises every
write transaction, so a race there would prove nothing."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from engine.accounts.projects import do_set_membership
from engine.jobs.lifecycle import claim_job, finish_job
from engine.masks.rle import encode_rle
from engine.models import DraftEdit, Job, Masklet, Review
from tests._masklets import square
from tests.security.world import HEIGHT, WIDTH, World, build_world

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not ON_POSTGRES, reason="races need PostgreSQL (DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]
ROUNDS = 5


def race(*writers: Callable[[], Any]) -> list[Any]:
    """Run the writers at the same moment, each in its own thread and connection."""
    barrier = threading.Barrier(len(writers))
    results: list[Any] = [None] * len(writers)

    def run(i: int, writer: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = writer()
        except BaseException as exc:  # reported through the result
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def world(settings) -> World:
    settings.TASK_SENDER = "tests.security.test_permission_matrix.drop_send"
    return build_world()


def test_two_saves_of_one_draft_version(world: World) -> None:
    """The holder's two tabs (and a second annotator of the project) save on the same draft
    version at once: one save is version n+1, the others get 409 and write nothing."""
    masklet = world.a.draft
    rival = world.b.annotator
    do_set_membership(world.a.project, rival, "annotator")
    tabs = [_client(world.a.annotator), _client(world.a.annotator), _client(rival)]
    for n in range(ROUNDS):
        base = Masklet.objects.get(pk=masklet.pk).draft_version
        rle = encode_rle(square(HEIGHT, WIDTH, 2 + n, 2, 6))
        body = json.dumps(
            {"base_version": base, "edits": [{"frame_index": 0, "tool": "brush", "rle": rle}]}
        )

        def save(client: APIClient, body: str = body) -> int:
            url = f"/api/masklets/{masklet.pk}/draft/edits/"
            return client.post(url, body, content_type="application/json").status_code

        statuses = race(*(lambda c=c: save(c) for c in tabs))
        assert sorted(statuses) == [200, 409, 409], statuses
        assert Masklet.objects.get(pk=masklet.pk).draft_version == base + 1
        assert DraftEdit.objects.filter(masklet=masklet, version=base + 1).count() == 1


def test_two_verdicts_on_one_revision(world: World) -> None:
    """Two reviewers judge the same revision at once: one verdict is recorded, the other
    reviewer gets 409; the masklet moves once."""
    second = world.b.reviewer
    do_set_membership(world.a.project, second, "reviewer")
    reviewers = [_client(world.a.reviewer), _client(second)]
    for n in range(ROUNDS):
        masklet = _fresh_submitted(world, n)
        revision = masklet.current_revision_id
        verdicts = ("satisfactory", "reject")

        def judge(client: APIClient, verdict: str, url: str, revision: int | None) -> int:
            body = json.dumps({"revision": revision, "verdict": verdict})
            return client.post(url, body, content_type="application/json").status_code

        url = f"/api/masklets/{masklet.pk}/reviews/"
        statuses = race(
            *(
                lambda c=c, v=v, u=url, r=revision: judge(c, v, u, r)
                for c, v in zip(reviewers, verdicts)
            )
        )
        assert sorted(statuses) == [201, 409], statuses
        assert Review.objects.filter(revision_id=revision).count() == 1
        winner = Review.objects.get(revision_id=revision).verdict
        expected = {"satisfactory": Masklet.Status.VERIFIED, "reject": Masklet.Status.REJECTED}
        assert Masklet.objects.get(pk=masklet.pk).status == expected[winner]


def _fresh_submitted(world: World, n: int) -> Masklet:
    from tests._masklets import submitted_masklet

    mask = square(HEIGHT, WIDTH, 3, 3 + n, 8)
    return submitted_masklet(world.a.video, world.a.annotator, {0: mask}, label=f"race {n}")


def test_finish_races_a_reclaim(world: World, settings) -> None:
    """A slow worker finishes its attempt while the recovery re-claims the job as a new attempt:
    either the finish lands (and the re-claim finds nothing to claim) or the re-claim does (and
    the old attempt's finish writes nothing); never both, never neither."""
    settings.JOB_STALE_SECONDS = 60
    outcomes = set()
    for n in range(ROUNDS * 2):
        job = Job.objects.create(kind=Job.Kind.EXPORT, project=world.a.project)
        first = claim_job(job.pk)
        assert first is not None
        stale = timezone.now() - timedelta(seconds=600)
        Job.objects.filter(pk=job.pk).update(heartbeat_at=stale)

        finished, reclaimed = race(
            functools.partial(finish_job, first, {"attempt": 1, "n": n}),
            functools.partial(claim_job, job.pk),
        )
        assert not isinstance(finished, BaseException), finished
        assert not isinstance(reclaimed, BaseException), reclaimed
        row = Job.objects.get(pk=job.pk)
        if finished:
            assert reclaimed is None
            assert (row.status, row.attempt, row.result["attempt"]) == ("succeeded", 1, 1)
            outcomes.add("finish won")
        else:
            assert reclaimed is not None
            assert reclaimed.attempt == 2
            assert (row.status, row.attempt, row.result) == ("running", 2, {})
            # the new attempt finishes; the old one can no longer write
            assert finish_job(reclaimed, {"attempt": 2})
            assert not finish_job(first, {"attempt": 1})
            assert Job.objects.get(pk=job.pk).result == {"attempt": 2}
            outcomes.add("re-claim won")
    assert outcomes  # which side wins is up to the scheduler; each round had exactly one
