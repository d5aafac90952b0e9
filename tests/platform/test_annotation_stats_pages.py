"""Annotation statistics pages with personas and hand-computed figures: the annotator's own page
(``/annotate/stats/``), the managers' project page (``/projects/<id>/annotation-stats/``),
permissions, empty states, links, and times written for people."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from engine.accounts.projects import do_create_user, do_set_membership
from engine.models import InteractionEvent, Masklet
from tests._clients import web_client
from tests.engine.annotation._annotation import video

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
CELLS = ("spf", "edited", "cpf", "frame-count", "objects", "submitted", "active")


def _log(user, v, kind, frame, seconds, phase=3, masklet=None):
    event = InteractionEvent.objects.create(
        user=user, video=v, kind=kind, frame_index=frame, payload={"phase": phase}, masklet=masklet
    )
    InteractionEvent.objects.filter(pk=event.pk).update(created_at=T0 + timedelta(seconds=seconds))


def _cells(row_html: str) -> tuple[str, ...]:
    found = dict(re.findall(r'<td class="([\w-]+)"[^>]*>(.*?)</td>', row_html, re.S))
    return tuple(found[c].strip() for c in CELLS)


def _rows(html: str, cls: str = "stats-row") -> dict[tuple[str, ...], tuple[str, ...]]:
    """Rows of the stats tables in ``html``: {(data attributes): (cells)}."""
    rows = {}
    for attrs, body in re.findall(rf'<tr class="{cls}"([^>]*)>(.*?)</tr>', html, re.S):
        rows[tuple(re.findall(r'data-[\w-]+="([^"]*)"', attrs))] = _cells(body)
    return rows


def _section(html: str, marker: str) -> str:
    start = html.index(marker)
    return html[start : html.index("</section>", start)]


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture
def bob(project):
    user = do_create_user("bob", "bob-pass", "annotator")
    do_set_membership(project, user, "annotator")
    return user


@pytest.fixture
def logged(project, annotator, bob):
    """Two 10-frame videos and hand-made event logs (see the figures in each test)."""
    kitchen, garden = video(project, "kitchen.mp4"), video(project, "garden.mp4")
    cup = Masklet.objects.create(video=kitchen, object_id=0, status=Masklet.Status.SUBMITTED)
    pot = Masklet.objects.create(video=garden, object_id=0)
    # alice, kitchen, phase 3: gaps 4 + 6 + 10 + 180 (idle: excluded) + 30 = 50 s active
    _log(annotator, kitchen, "frame_view", 0, 0)
    _log(annotator, kitchen, "click", 0, 4, masklet=cup)
    _log(annotator, kitchen, "click", 0, 10, masklet=cup)
    _log(annotator, kitchen, "box", 3, 20, masklet=cup)
    _log(annotator, kitchen, "brush", 5, 200, masklet=cup)
    _log(annotator, kitchen, "submit", None, 230, masklet=cup)
    # alice, garden, phase 1: gaps 3 + 7 = 10 s; clicks on frames 2, 2, 4
    _log(annotator, garden, "click", 2, 1000, phase=1, masklet=pot)
    _log(annotator, garden, "click", 2, 1003, phase=1, masklet=pot)
    _log(annotator, garden, "click", 4, 1010, phase=1, masklet=pot)
    # bob, kitchen, phase 3: gaps 30 + 60 (the threshold itself counts) + 10 = 100 s
    _log(bob, kitchen, "frame_view", 0, 0)
    _log(bob, kitchen, "brush", 1, 30)
    _log(bob, kitchen, "eraser", 1, 90)
    _log(bob, kitchen, "frame_view", 9, 100)
    return kitchen, garden


# (s/frame, % edited, clicks/clicked frame, frames, objects, submitted, active time)
ALICE_KITCHEN = ("5.00 s", "30.0 %", "1.50", "10", "1", "1", "50 s")  # 50/10; 0,3,5; 3 on 0,3
ALICE_GARDEN = ("1.00 s", "20.0 %", "1.50", "10", "1", "0", "10 s")  # 10/10; 2,4; 3 on 2,4
BOB_KITCHEN = ("10.0 s", "10.0 %", "—", "10", "0", "0", "1 min 40 s")  # 100/10; frame 1; none


def test_annotator_sees_only_their_own_figures(project, annotator, bob, logged):
    kitchen, garden = logged
    page = web_client(annotator).get("/annotate/stats/")
    assert page.status_code == 200
    html = page.content.decode()
    assert _rows(html) == {
        (str(garden.pk), "1"): ALICE_GARDEN,
        (str(kitchen.pk), "3"): ALICE_KITCHEN,
    }
    assert "bob" not in _text(html).split()  # no other annotator's name
    assert _rows(html, "totals-row") == {("1",): ALICE_GARDEN, ("3",): ALICE_KITCHEN}
    assert "Phase 3: full SAM 2" in html
    assert "Phase 1: SAM per frame" in html
    # times for people: a date in words, no raw ISO in the text
    assert "1 Jan 2025, 12:03" in html  # alice's last kitchen event, T0 + 230 s
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d", _text(html))
    assert "/annotation-stats/" not in html  # no manager link for an annotator
    bob_html = web_client(bob).get("/annotate/stats/").content.decode()
    assert _rows(bob_html) == {(str(kitchen.pk), "3"): BOB_KITCHEN}
    assert "garden.mp4" not in bob_html


def test_manager_page_per_annotator_and_project_totals(project, manager, annotator, logged):
    kitchen, garden = logged
    page = web_client(manager).get(f"/projects/{project.pk}/annotation-stats/")
    assert page.status_code == 200
    html = page.content.decode()
    alice = _section(html, f'data-user="{annotator.pk}"')
    sections = re.findall(
        r'<section class="card stats-annotator" data-user="(\d+)">\s*<h3>(\w+)</h3>', html
    )
    assert [name for _, name in sections] == ["alice", "bob"]
    bob = _section(html, f'data-user="{sections[1][0]}"')
    assert _rows(alice) == {
        (str(garden.pk), "1"): ALICE_GARDEN,
        (str(kitchen.pk), "3"): ALICE_KITCHEN,
    }
    assert _rows(bob) == {(str(kitchen.pk), "3"): BOB_KITCHEN}
    # project totals, ratios of sums: phase 3 = alice + bob on kitchen: 150 s over 20 frames,
    # 4 of 20 frames edited, 3 clicks on 2 frames; phase 1 = alice on garden alone
    totals = _section(html, 'id="project-totals"')
    assert _rows(totals, "totals-row") == {
        ("1",): ALICE_GARDEN,
        ("3",): ("7.50 s", "20.0 %", "1.50", "20", "1", "1", "2 min 30 s"),
    }
    assert re.search(
        r'data-phase="3">\s*<td>Phase 3: full SAM 2</td>\s*<td class="annotators">2<', totals
    )
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d", _text(html))
    # the manager annotated nothing: their own page says so and links to the project's figures
    own = web_client(manager).get("/annotate/stats/").content.decode()
    assert "No annotation work of yours in Kitchen clips yet" in own
    assert f'href="/projects/{project.pk}/annotation-stats/"' in own


def test_permissions(project, manager, annotator, reviewer, outsider, logged):
    url = f"/projects/{project.pk}/annotation-stats/"
    assert web_client(manager).get(url).status_code == 200
    assert web_client(reviewer).get(url).status_code == 403
    assert web_client(annotator).get(url).status_code == 403
    assert web_client(outsider).get(url).status_code == 404
    assert (
        web_client(manager).get(f"/projects/{project.pk + 99}/annotation-stats/").status_code == 404
    )
    for anonymous in ("/annotate/stats/", url):
        answer = Client().get(anonymous)
        assert answer.status_code == 302
        assert "/login/" in answer["Location"]
    # a reviewer and an outsider annotate nowhere: an empty state, none of the project's figures
    for user in (reviewer, outsider):
        html = web_client(user).get("/annotate/stats/").content.decode()
        assert "You annotate in no project" in html
        assert "kitchen.mp4" not in html
        assert "stats-row" not in html


def test_empty_states(project, manager, annotator):
    html = web_client(manager).get(f"/projects/{project.pk}/annotation-stats/").content.decode()
    assert "No annotation work recorded in Kitchen clips yet" in html
    assert "project-totals" not in html
    html = web_client(annotator).get("/annotate/stats/").content.decode()
    assert "No annotation work of yours in Kitchen clips yet" in html
    assert "stats-row" not in html


def test_links_from_the_queue_and_the_project_page(project, manager, annotator, reviewer):
    stats_url = f'href="/projects/{project.pk}/annotation-stats/"'
    queue = web_client(manager).get("/annotate/").content.decode()
    assert 'href="/annotate/stats/"' in queue
    assert stats_url in queue
    queue = web_client(annotator).get("/annotate/").content.decode()
    assert 'href="/annotate/stats/"' in queue
    assert stats_url not in queue
    assert stats_url in web_client(manager).get(f"/projects/{project.pk}/").content.decode()
    detail = web_client(annotator).get(f"/projects/{project.pk}/").content.decode()
    assert 'href="/annotate/stats/"' in detail
    assert stats_url not in detail
    detail = web_client(reviewer).get(f"/projects/{project.pk}/").content.decode()
    assert "annotation-stats" not in detail
    assert 'href="/annotate/stats/"' not in detail


def test_figures_are_written_for_people():
    from webapp.annotation_stats_views import human_duration, percent, ratio, seconds_per_frame

    assert [human_duration(s) for s in (0, 0.34, 9.96, 42.4, 185, 7620)] == [
        "0.0 s",
        "0.3 s",
        "10 s",
        "42 s",
        "3 min 05 s",
        "2 h 07 min",
    ]
    assert [seconds_per_frame(v) for v in (None, 0.0234, 7.5, 12.34)] == [
        "—",
        "0.02 s",
        "7.50 s",
        "12.3 s",
    ]
    assert (percent(None), percent(100 / 3), ratio(None), ratio(4 / 3)) == (
        "—",
        "33.3 %",
        "—",
        "1.33",
    )
