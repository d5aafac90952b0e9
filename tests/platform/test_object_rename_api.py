"""Renaming an object after its creation (POST /api/masklets/<id>/draft/label/): a save of the
draft (its version moves, a stale one is a 409), validated with clear errors, kept in the
revision made on submit, refused to anyone but the lease's holder and while it propagates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.accounts.projects import do_create_user, do_set_membership
from engine.masks.rle import encode_rle
from engine.models import InteractionEvent, Job, Masklet, MaskletRevision
from tests._clients import api_client
from tests.engine.annotation._annotation import box_mask, video

pytestmark = pytest.mark.django_db


@pytest.fixture
def leased(project: Any, annotator: Any) -> int:
    """A ready video leased to alice with one object labelled "cup": the masklet id."""
    video(project)
    client = api_client(annotator)
    lease = client.post("/api/annotation/next/", {"project": project.pk}, format="json").json()
    made = client.post(f"/api/annotation/leases/{lease['id']}/objects/", {"label": "cup"})
    assert made.status_code == 201
    return int(made.json()["id"])


def _rename(user: Any, masklet_id: int, base: Any, label: Any) -> Any:
    return api_client(user).post(
        f"/api/masklets/{masklet_id}/draft/label/",
        {"base_version": base, "label": label},
        format="json",
    )


def _version(masklet_id: int) -> int:
    return int(Masklet.objects.get(pk=masklet_id).draft_version)


def test_rename_saves_the_label_in_the_draft_and_the_revision(annotator: Any, leased: int):
    client = api_client(annotator)
    answer = _rename(annotator, leased, 0, "  red mug ")
    assert answer.status_code == 200, answer.content
    assert answer.json()["label"] == "red mug"
    assert answer.json()["version"] == 1
    draft = client.get(f"/api/masklets/{leased}/draft/").json()
    assert (draft["masklet"]["label"], draft["version"]) == ("red mug", 1)
    # the rename is no frame edit: nothing to undo, no frame changed
    assert draft["can_undo"] is False
    assert draft["frames"] == {}
    event = InteractionEvent.objects.get(kind="object", payload__action="rename")
    assert event.payload["from"] == "cup"
    assert event.payload["to"] == "red mug"
    # paint, rename again, submit: the revision carries the label of the submitted draft
    edit = {
        "frame_index": 0,
        "tool": "brush",
        "rle": dict(encode_rle(box_mask(2, 3))),
        "prompt": None,
    }
    saved = client.post(
        f"/api/masklets/{leased}/draft/edits/", {"base_version": 1, "edits": [edit]}, format="json"
    )
    assert saved.status_code == 200, saved.content
    assert _rename(annotator, leased, 2, "mug").status_code == 200
    submitted = client.post(f"/api/masklets/{leased}/draft/submit/", {"base_version": 3})
    assert submitted.status_code == 201, submitted.content
    assert submitted.json()["label"] == "mug"
    revision = MaskletRevision.objects.get(pk=submitted.json()["revision"])
    assert revision.label == "mug"
    # a submitted object is not renamed from the workspace any more
    late = _rename(annotator, leased, _version(leased), "cup")
    assert late.status_code == 409
    assert "submitted" in late.json()["detail"]
    assert MaskletRevision.objects.get(pk=revision.pk).label == "mug"


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("x" * 201, "no more than 200 characters"),
        ("cup\x00", "Null characters are not allowed"),
        (None, "may not be null"),
        (["cup"], "Not a valid string"),
    ],
)
def test_bad_labels_are_400_with_a_clear_error(
    annotator: Any, leased: int, label: Any, message: str
):
    answer = _rename(annotator, leased, 0, label)
    assert answer.status_code == 400, answer.content
    assert message in str(answer.json())
    masklet = Masklet.objects.get(pk=leased)
    assert (masklet.label, masklet.draft_version) == ("cup", 0)


def test_engine_checks_the_label_itself(annotator: Any, leased: int):
    from engine.annotation import drafts
    from engine.errors import InvalidInput

    masklet = Masklet.objects.get(pk=leased)
    with pytest.raises(InvalidInput, match="at most 200 characters; this one has 201"):
        drafts.do_rename_object(annotator, masklet, 0, "y" * 201)
    with pytest.raises(InvalidInput, match="NUL"):
        drafts.do_rename_object(annotator, masklet, 0, "a\x00b")
    # surrounding blanks do not count against the limit
    assert drafts.do_rename_object(annotator, masklet, 0, f" {'z' * 200} ") == 1
    assert Masklet.objects.get(pk=leased).label == "z" * 200


def test_stale_versions_other_users_and_running_propagations_change_nothing(
    project: Any, annotator: Any, reviewer: Any, leased: int
):
    bob = do_create_user("bob", "bob-pass", "annotator")
    do_set_membership(project, bob, "annotator")
    assert _rename(annotator, leased, 0, "mug").status_code == 200
    stale = _rename(annotator, leased, 0, "bowl")  # a second tab that saw version 0
    assert stale.status_code == 409
    assert "version 1, not 0" in stale.json()["detail"]
    assert _rename(bob, leased, 1, "bowl").status_code == 409  # not the lease's holder
    assert _rename(reviewer, leased, 1, "bowl").status_code == 403
    masklet = Masklet.objects.get(pk=leased)
    Job.objects.create(
        kind=Job.Kind.PROPAGATE,
        project=project,
        video=masklet.video,
        status=Job.Status.RUNNING,
        args={"masklet_id": leased},
    )
    running = _rename(annotator, leased, 1, "bowl")
    assert running.status_code == 409
    assert "propagation is running" in running.json()["detail"]
    masklet.refresh_from_db()
    assert (masklet.label, masklet.draft_version) == ("mug", 1)


def test_schema_documents_the_rename(annotator: Any):
    schema = api_client(annotator).get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/masklets/{masklet_id}/draft/label/"]["post"]
    assert "Rename" in operation["description"]


def test_rename_works_on_a_fix(project: Any, annotator: Any) -> None:
    from engine.annotation import leases
    from tests.engine.annotation._annotation import sent_back_for_fix

    v = video(project)
    masklet = sent_back_for_fix(v, annotator, {0: np.asarray(box_mask(1, 1))})
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    assert lease.masklet_id == masklet.pk
    answer = _rename(annotator, masklet.pk, masklet.draft_version, "lid")
    assert answer.status_code == 200, answer.content
    assert Masklet.objects.get(pk=masklet.pk).label == "lid"
