"""Verification engine: verdict transitions, self-review, staleness, fix assignments, stats."""

from __future__ import annotations

import datetime as dt
import threading
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from engine.accounts.access import AccessDenied
from engine.accounts.projects import do_create_user, do_set_membership
from engine.masklets.revisions import FrameMask, StaleRevision, do_create_masklet, revision_frames
from engine.masks.rle import decode_rle, encode_rle
from engine.models import Assignment, Masklet, MaskletRevision, Review, Video
from engine.review import fixes, history, leases, queue, stats, submission, verdicts
from engine.review.errors import InvalidReview, NotReviewable, SelfReview
from tests._masklets import ready_video, square, submitted_masklet

H, W, N_FRAMES = 24, 32, 10


def _box(top: int, left: int, size: int = 6) -> np.ndarray:
    return square(H, W, top, left, size)


@pytest.fixture
def video(project):
    return ready_video(project, height=H, width=W, frame_count=N_FRAMES)


def _submitted(video, author, **kw) -> Masklet:
    masks = {i: _box(i, i) for i in range(0, N_FRAMES, 2)}
    return submitted_masklet(video, author, masks, **kw)


def _current(masklet: Masklet) -> MaskletRevision:
    masklet.refresh_from_db()
    assert masklet.current_revision is not None
    return masklet.current_revision


def test_submit_moves_draft_into_the_queue(video, annotator, reviewer):
    draft = do_create_masklet(
        video, author=annotator, frames={0: FrameMask(encode_rle(_box(0, 0)))}
    )
    assert list(queue.review_queue(reviewer)) == []
    submission.do_submit_masklet(draft, annotator)
    assert [m.pk for m in queue.review_queue(reviewer)] == [draft.pk]
    with pytest.raises(NotReviewable):
        submission.do_submit_masklet(draft, annotator)


def test_only_author_manager_or_fix_assignee_submit(video, project, annotator, reviewer, manager):
    bob = do_create_user("bob", "bob-pass")
    do_set_membership(project, bob, "annotator")
    draft = do_create_masklet(
        video, author=annotator, frames={0: FrameMask(encode_rle(_box(0, 0)))}
    )
    for intruder in (bob, reviewer):
        with pytest.raises(AccessDenied):
            submission.do_submit_masklet(draft, intruder)
    draft.refresh_from_db()
    assert draft.status == Masklet.Status.DRAFT
    submission.do_submit_masklet(draft, manager)
    verdicts.do_review(_current(draft), reviewer, "unsatisfactory", [0], fix_assignee=bob)
    submission.do_submit_masklet(draft, bob)
    assert Assignment.objects.get(kind="fix").state == "done"


def test_satisfactory_verifies(video, annotator, reviewer):
    masklet = _submitted(video, annotator)
    outcome = verdicts.do_review(_current(masklet), reviewer, "satisfactory", comment="fine")
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.VERIFIED
    assert outcome.fix_assignment is None
    assert outcome.review.comment == "fine"
    assert list(queue.review_queue(reviewer)) == []


def test_reject_marks_rejected_without_fix(video, annotator, reviewer):
    masklet = _submitted(video, annotator)
    verdicts.do_review(_current(masklet), reviewer, "reject", [3], {3: "two objects merged"})
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.REJECTED
    assert not Assignment.objects.filter(kind=Assignment.Kind.FIX).exists()
    assert Review.objects.get().frame_notes == {"3": "two objects merged"}


def test_unsatisfactory_creates_fix_assignment_with_flagged_frames(video, annotator, reviewer):
    masklet = _submitted(video, annotator)
    outcome = verdicts.do_review(
        _current(masklet),
        reviewer,
        "unsatisfactory",
        [6, 2, 6],
        {2: "leaks onto the table"},
        comment="tighten the edges",
    )
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.NEEDS_FIX
    fix = outcome.fix_assignment
    assert fix is not None
    assert (fix.kind, fix.state, fix.user) == ("fix", "open", annotator)
    assert fix.flagged_frames == [2, 6]
    assert fix.note == "tighten the edges"
    assert Review.objects.get().frame_notes == {"2": "leaks onto the table"}
    assert [a.pk for a in leases.open_fix_assignments(annotator)] == [fix.pk]


def test_fix_assignment_goes_to_chosen_annotator(video, annotator, reviewer, project):
    other = do_create_user("bob", "bob-pass")
    do_set_membership(project, other, "annotator")
    masklet = _submitted(video, annotator)
    outcome = verdicts.do_review(
        _current(masklet), reviewer, "unsatisfactory", [1], fix_assignee=other
    )
    assert outcome.fix_assignment is not None
    assert outcome.fix_assignment.user == other


def test_reviewer_never_reviews_own_work(video, annotator, reviewer, manager):
    own = _submitted(video, reviewer)
    assert list(queue.review_queue(reviewer)) == []
    with pytest.raises(SelfReview):
        verdicts.do_review(_current(own), reviewer, "satisfactory")
    assert isinstance(SelfReview("x"), AccessDenied)
    # A masklet the reviewer touched in any earlier revision is theirs too.
    shared = _submitted(video, annotator)
    verdicts.do_review(_current(shared), manager, "unsatisfactory", [0])
    fix = Assignment.objects.get(kind="fix", masklet=shared)
    fix.user = reviewer
    fix.save()
    base = _current(shared)
    fixes.do_resubmit_fix(
        fix, reviewer, {0: FrameMask(encode_rle(_box(1, 1)), "brush")}, base_revision_id=base.pk
    )
    assert shared.pk not in [m.pk for m in queue.review_queue(reviewer)]
    with pytest.raises(SelfReview):
        verdicts.do_review(_current(shared), reviewer, "satisfactory")
    shared.refresh_from_db()
    assert shared.status == Masklet.Status.SUBMITTED
    assert Review.objects.filter(revision__masklet=shared).count() == 1


def test_annotators_cannot_review(video, annotator, manager):
    masklet = _submitted(video, manager)
    with pytest.raises(AccessDenied):
        verdicts.do_review(_current(masklet), annotator, "satisfactory")
    assert list(queue.review_queue(annotator)) == []


def test_stale_revision_is_a_conflict(video, annotator, reviewer, manager):
    masklet = _submitted(video, annotator)
    old = _current(masklet)
    verdicts.do_review(old, manager, "unsatisfactory", [4])
    fix = Assignment.objects.get(kind="fix")
    fixes.do_resubmit_fix(
        fix, annotator, {4: FrameMask(encode_rle(_box(2, 2)), "brush")}, base_revision_id=old.pk
    )
    with pytest.raises(StaleRevision):
        verdicts.do_review(old, reviewer, "satisfactory")
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    assert Review.objects.count() == 1


def test_bad_input_is_refused_and_changes_nothing(video, annotator, reviewer):
    masklet = _submitted(video, annotator)
    rev = _current(masklet)
    bad_calls = [
        {"verdict": "meh"},
        {"verdict": "unsatisfactory", "flagged_frames": [N_FRAMES]},
        {"verdict": "unsatisfactory", "flagged_frames": [-1]},
        {"verdict": "unsatisfactory", "flagged_frames": [float("nan")]},
        {"verdict": "unsatisfactory", "flagged_frames": [2.5]},
        {"verdict": "unsatisfactory", "flagged_frames": [True]},
        {"verdict": "unsatisfactory", "flagged_frames": "1,2"},
        {"verdict": "unsatisfactory", "flagged_frames": [1], "frame_notes": {2: "not flagged"}},
        {"verdict": "unsatisfactory", "flagged_frames": [1], "frame_notes": {1: 5}},
        {"verdict": "satisfactory", "flagged_frames": [1]},
        {"verdict": "unsatisfactory", "flagged_frames": [1], "frame_notes": {"1": "str key"}},
        {"verdict": "unsatisfactory", "flagged_frames": [1], "frame_notes": {1: "nul\x00"}},
        {"verdict": "unsatisfactory", "flagged_frames": [1], "frame_notes": {1: "x" * 2001}},
        {"verdict": "reject", "comment": "nul\x00"},
        {"verdict": "reject", "comment": "x" * 10_001},
    ]
    for kwargs in bad_calls:
        with pytest.raises(InvalidReview):
            verdicts.do_review(rev, reviewer, **kwargs)  # type: ignore[arg-type]
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    assert not Review.objects.exists()
    assert not Assignment.objects.filter(kind="fix").exists()


def test_fix_resubmit_makes_new_revision_and_history_stays(video, annotator, reviewer):
    masklet = _submitted(video, annotator)
    first = _current(masklet)
    verdicts.do_review(first, reviewer, "unsatisfactory", [2, 4], {4: "too big"})
    fix = Assignment.objects.get(kind="fix")
    fixed = _box(10, 10, 3)
    revision = fixes.do_resubmit_fix(
        fix, annotator, {4: FrameMask(encode_rle(fixed), "brush")}, base_revision_id=first.pk
    )
    masklet.refresh_from_db()
    fix.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    assert masklet.current_revision == revision
    assert revision.number == 2
    assert revision.edited_frames == [4]
    assert fix.state == "done"
    assert fix.completed_at is not None
    frames = revision_frames(revision)
    assert np.array_equal(decode_rle(frames[4].rle), fixed)  # type: ignore[arg-type]
    assert np.array_equal(decode_rle(frames[2].rle), _box(2, 2))  # type: ignore[arg-type]
    with pytest.raises(NotReviewable):
        fixes.do_resubmit_fix(fix, annotator, {}, base_revision_id=revision.pk)

    verdicts.do_review(revision, reviewer, "satisfactory")
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.VERIFIED
    reviews = list(history.masklet_reviews(masklet))
    assert [(r.revision.number, r.verdict) for r in reviews] == [
        (1, "unsatisfactory"),
        (2, "satisfactory"),
    ]
    assert reviews[0].flagged_frames == [2, 4]
    assert MaskletRevision.objects.filter(masklet=masklet).count() == 2
    edits = history.frame_edit_history(masklet)
    assert [(e.revision_number, e.author) for e in edits[4]] == [(1, "alice"), (2, "alice")]
    assert [e.revision_number for e in edits[2]] == [1]
    assert edits[4][1].source == "brush"


def test_fix_by_someone_else_is_refused(video, annotator, reviewer, outsider):
    masklet = _submitted(video, annotator)
    rev = _current(masklet)
    verdicts.do_review(rev, reviewer, "unsatisfactory", [0])
    fix = Assignment.objects.get(kind="fix")
    with pytest.raises(AccessDenied):
        fixes.do_resubmit_fix(fix, reviewer, {}, base_revision_id=rev.pk)
    with pytest.raises(StaleRevision):
        fixes.do_resubmit_fix(fix, annotator, {}, base_revision_id=rev.pk + 1000)
    fix.refresh_from_db()
    masklet.refresh_from_db()
    assert fix.state == "open"
    assert masklet.status == Masklet.Status.NEEDS_FIX


def test_authorless_auto_masklet_fix_is_open_to_annotators(video, annotator, reviewer):
    masklet = _submitted(video, annotator)
    MaskletRevision.objects.filter(masklet=masklet).update(author=None)
    verdicts.do_review(_current(masklet), reviewer, "unsatisfactory", [0])
    fix = Assignment.objects.get(kind="fix")
    assert fix.user is None
    assert [a.pk for a in leases.open_fix_assignments(annotator)] == [fix.pk]
    fixes.do_resubmit_fix(fix, annotator, {}, base_revision_id=_current(masklet).pk)
    fix.refresh_from_db()
    assert fix.user == annotator
    assert fix.state == "done"


def test_take_next_leases_and_lease_expiry_returns_work(video, annotator, reviewer, manager):
    first = _submitted(video, annotator)
    second = _submitted(video, annotator)
    project = video.project
    assert queue.do_take_next_review(reviewer, project) == first
    # Taking again resumes the held masklet; another reviewer gets the next one.
    assert queue.do_take_next_review(reviewer, project) == first
    assert queue.do_take_next_review(manager, project) == second
    assert queue.do_take_next_review(manager, project) == second
    assert [m.pk for m in queue.review_queue(manager)] == [second.pk]
    Assignment.objects.filter(kind="review", user=reviewer).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert first.pk in [m.pk for m in queue.review_queue(manager)]
    assert leases.expire_review_leases() == 1
    assert Assignment.objects.get(kind="review", user=reviewer).state == "cancelled"
    assert queue.do_take_next_review(manager, project) == second  # still holds its lease
    verdicts.do_review(_current(second), manager, "satisfactory")
    assert Assignment.objects.get(kind="review", user=manager).state == "done"
    with pytest.raises(AccessDenied):
        queue.do_take_next_review(annotator, project)


def test_stats_on_a_known_set_of_reviews(video, project, annotator, reviewer, manager):
    plan = [  # (reviewer, verdict, day)
        (reviewer, "satisfactory", 1),
        (reviewer, "satisfactory", 1),
        (reviewer, "reject", 1),
        (reviewer, "unsatisfactory", 2),
        (manager, "satisfactory", 2),
        (manager, "unsatisfactory", 3),
    ]
    for who, verdict, day in plan:
        masklet = _submitted(video, annotator)
        flags = [0] if verdict == "unsatisfactory" else []
        outcome = verdicts.do_review(_current(masklet), who, verdict, flags)
        when = dt.datetime(2026, 3, day, 12, tzinfo=dt.UTC)
        Review.objects.filter(pk=outcome.review.pk).update(created_at=when)
    summary = stats.review_stats(project)
    assert (summary.total, summary.satisfactory, summary.unsatisfactory, summary.rejected) == (
        6,
        3,
        2,
        1,
    )
    assert summary.unsatisfactory_rate == pytest.approx(2 / 6)
    assert summary.reject_rate == pytest.approx(1 / 6)
    assert summary.per_day == [
        (dt.date(2026, 3, 1), 3),
        (dt.date(2026, 3, 2), 2),
        (dt.date(2026, 3, 3), 1),
    ]
    assert summary.reviews_per_active_day == pytest.approx(2.0)
    rene, maria = summary.per_reviewer
    assert (
        rene.reviewer,
        rene.reviews,
        rene.satisfactory,
        rene.unsatisfactory,
        rene.rejected,
        rene.active_days,
    ) == ("rene", 4, 2, 1, 1, 2)
    assert (maria.reviewer, maria.reviews, maria.active_days) == ("maria", 2, 2)
    assert rene.reviews_per_active_day == pytest.approx(2.0)
    data = summary.to_json()
    assert data["per_day"][0] == {"day": "2026-03-01", "reviews": 3}
    assert data["per_reviewer"][1]["reviewer"] == "maria"
    empty = stats.review_stats(type(project).objects.create(name="Empty", created_by=manager))
    assert (empty.total, empty.unsatisfactory_rate, empty.reject_rate) == (0, 0.0, 0.0)


def _race(*calls):
    """Run the calls at once in threads (each with its own DB connection); return outcomes."""
    from django.db import connection

    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(k: int) -> None:
        try:
            barrier.wait()
            results[k] = calls[k]()
        except Exception as exc:  # the outcome under test, kept for the assertion
            results[k] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_verdicts_one_wins(project, annotator, reviewer, manager):
    video = Video.objects.create(
        project=project, name="r.mp4", status="ready", width=W, height=H, frame_count=N_FRAMES
    )
    masklet = _submitted(video, annotator)
    revision = _current(masklet)
    results = _race(
        lambda: verdicts.do_review(revision, reviewer, "satisfactory"),
        lambda: verdicts.do_review(revision, manager, "unsatisfactory", [1]),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1
    assert isinstance(errors[0], NotReviewable)
    assert Review.objects.count() == 1
    masklet.refresh_from_db()
    winner = Review.objects.get().verdict
    assert masklet.status == {"satisfactory": "verified", "unsatisfactory": "needs_fix"}[winner]
    assert Assignment.objects.filter(kind="fix").count() == (winner == "unsatisfactory")


@pytest.mark.django_db(transaction=True)
def test_concurrent_take_next_gives_different_masklets(project, annotator, reviewer, manager):
    video = Video.objects.create(
        project=project, name="t.mp4", status="ready", width=W, height=H, frame_count=N_FRAMES
    )
    first, second = _submitted(video, annotator), _submitted(video, annotator)
    results = _race(
        lambda: queue.do_take_next_review(reviewer, project),
        lambda: queue.do_take_next_review(manager, project),
    )
    assert sorted(m.pk for m in results) == sorted([first.pk, second.pk])
