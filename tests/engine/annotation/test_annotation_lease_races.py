"""Annotators taking work at the same moment never get the same video."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from engine.accounts.projects import do_create_project, do_create_user, do_set_membership
from engine.annotation import leases
from engine.models import Assignment
from tests.engine.annotation._annotation import video


@pytest.mark.django_db(transaction=True)
def test_concurrent_takes_get_different_videos():
    # given six annotators and three ready videos
    boss = do_create_user("boss", "boss-pass", "manager")
    project = do_create_project("Race", boss)
    people = []
    for n in range(6):
        person = do_create_user(f"a{n}", "pass", "annotator")
        do_set_membership(project, person, "annotator")
        people.append(person)
    for n in range(3):
        video(project, f"{n}.mp4")
    barrier = threading.Barrier(len(people))
    taken: dict[str, int | None] = {}
    errors: list[BaseException] = []

    def take(person) -> None:
        try:
            barrier.wait()
            lease = leases.do_take_next_video(person, project)
            taken[person.username] = None if lease is None else lease.video_id
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    # when they all take work at once
    threads = [threading.Thread(target=take, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then each video went to exactly one of them
    assert errors == []
    videos = [v for v in taken.values() if v is not None]
    assert len(videos) == 3
    assert len(set(videos)) == 3
    assert Assignment.objects.filter(state=Assignment.State.LEASED).count() == 3
