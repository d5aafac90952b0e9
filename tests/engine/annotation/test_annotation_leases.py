"""The annotators' queue: taking, renewing, releasing, expiring and finishing leases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from engine.accounts.projects import do_create_user, do_set_membership
from engine.annotation import drafts, leases
from engine.errors import Conflict, PermissionDenied
from engine.models import Assignment, Masklet, Membership, Video
from tests.engine.annotation._annotation import box_mask, click, sent_back_for_fix, video


@pytest.fixture
def second(project):
    bob = do_create_user("bob", "bob-pass", "annotator")
    do_set_membership(project, bob, "annotator")
    return bob


def test_take_next_is_idempotent_and_exclusive(project, annotator, second):
    # given two ready videos and one still decoding
    first, other = video(project, "a.mp4"), video(project, "b.mp4")
    Video.objects.create(project=project, name="c.mp4", status=Video.Status.DECODING)
    # when both annotators take work, twice each
    a1 = leases.do_take_next_video(annotator, project)
    a2 = leases.do_take_next_video(annotator, project)
    b1 = leases.do_take_next_video(second, project)
    # then each holds a different ready video and taking again returns the same lease
    assert a1 is not None
    assert a2 is not None
    assert b1 is not None
    assert a1.pk == a2.pk
    assert {a1.video_id, b1.video_id} == {first.pk, other.pk}
    assert a1.kind == b1.kind == Assignment.Kind.ANNOTATE
    assert a1.lease_expires_at is not None
    assert a1.lease_expires_at > timezone.now()
    # a third taker finds nothing left
    third = do_create_user("carl", "carl-pass", "annotator")
    do_set_membership(project, third, "annotator")
    assert leases.do_take_next_video(third, project) is None


def test_reviewers_and_outsiders_cannot_take(project, reviewer, outsider):
    video(project)
    with pytest.raises(PermissionDenied):
        leases.do_take_next_video(reviewer, project)
    with pytest.raises(PermissionDenied):
        leases.do_take_next_video(outsider, project)


def test_expired_lease_returns_the_video(project, annotator, second):
    video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    assert leases.do_take_next_video(second, project) is None
    Assignment.objects.filter(pk=lease.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    # before the sweep runs, another annotator may already take the video back
    taken = leases.do_take_next_video(second, project)
    assert taken is not None
    assert taken.video_id == lease.video_id
    lease.refresh_from_db()
    assert lease.state == Assignment.State.CANCELLED
    with pytest.raises(leases.NotLeaseHolder):
        leases.do_renew_lease(annotator, lease)
    # the sweep expires the second lease too
    Assignment.objects.filter(pk=taken.pk).update(lease_expires_at=timezone.now())
    assert leases.do_expire_annotation_leases() == 1
    assert leases.do_expire_annotation_leases() == 0
    taken.refresh_from_db()
    assert taken.state == Assignment.State.CANCELLED


def test_renew_release_and_manager_view(project, annotator, second, manager):
    video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    before = lease.lease_expires_at
    after = leases.do_renew_lease(annotator, lease).lease_expires_at
    assert before is not None
    assert after is not None
    assert after >= before
    with pytest.raises(leases.NotLeaseHolder):
        leases.do_renew_lease(second, lease)
    assert list(leases.annotation_leases_for_project(project)) == [lease]
    assert list(leases.leases_visible_to(second, project)) == []
    assert list(leases.leases_visible_to(manager, project)) == [lease]
    with pytest.raises(PermissionDenied):
        leases.do_release_lease(second, lease)
    released = leases.do_release_lease(manager, lease)
    assert released.state == Assignment.State.CANCELLED
    assert leases.do_take_next_video(second, project) is not None


def test_finish_needs_submitted_objects(project, annotator):
    video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    masklet = drafts.do_create_object(annotator, lease, "cup")
    with pytest.raises(Conflict, match="objects first: 0"):
        leases.do_finish_video(annotator, lease)
    version = drafts.do_record_edits(annotator, masklet, 0, [click(0, box_mask(2, 2))])
    drafts.do_submit_draft(annotator, masklet, version)
    done = leases.do_finish_video(annotator, lease)
    assert done.state == Assignment.State.DONE
    # a finished video never comes back to the queue
    assert leases.do_take_next_video(annotator, project) is None


def _sent_back(project, author, reviewer):
    return sent_back_for_fix(video(project), author, {0: box_mask(1, 1)})


def test_fix_goes_back_to_its_author_first(project, annotator, second, reviewer):
    masklet = _sent_back(project, annotator, reviewer)
    # the fix belongs to its author; its video is theirs while they hold it
    assert leases.do_take_next_video(second, project) is None
    fix = leases.do_take_next_video(annotator, project)
    assert fix is not None
    assert fix.kind == Assignment.Kind.FIX
    assert fix.masklet_id == masklet.pk
    assert fix.state == Assignment.State.LEASED
    # expiry returns it to open for its author
    Assignment.objects.filter(pk=fix.pk).update(lease_expires_at=timezone.now())
    assert leases.do_expire_annotation_leases() == 1
    fix.refresh_from_db()
    assert fix.state == Assignment.State.OPEN
    assert fix.user == annotator
    # submitting the fixed draft closes it
    fix = leases.do_take_next_video(annotator, project)
    assert fix is not None
    masklet.refresh_from_db()
    drafts.do_submit_draft(annotator, masklet, masklet.draft_version)
    fix.refresh_from_db()
    assert fix.state == Assignment.State.DONE
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED


def test_fix_of_a_departed_annotator_goes_to_another(project, annotator, second, reviewer):
    masklet = _sent_back(project, annotator, reviewer)
    Membership.objects.filter(project=project, user=annotator).delete()
    fix = leases.do_take_next_video(second, project)
    assert fix is not None
    assert fix.masklet_id == masklet.pk
    assert fix.user == second
