"""Two projects with one object of every kind each, and the personas of the permission matrix.

Project A's objects fill the URL kwargs; project B mirrors A so that each outsider persona is a
real member (with the same role) of another project. Every name of A carries :data:`A_MARKER`,
which must never appear in a response to anyone outside A.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from engine.accounts.invitations import Invitation, make_invitation
from engine.accounts.projects import do_create_project, do_create_user, do_set_membership
from engine.annotation import drafts, leases
from engine.models import Job, Masklet, ModelVersion, Project, Round, User, Video, frame_key
from engine.review.verdicts import do_review
from tests._masklets import ready_video, square, submitted_masklet

A_MARKER = "alpha7q"
HEIGHT, WIDTH, FRAMES = 32, 48, 3

#: The personas, in the order the matrix prints them.
PERSONAS = (
    "anonymous",
    "annotator",
    "reviewer",
    "manager",
    "outside_annotator",
    "outside_reviewer",
    "outside_manager",
    "admin",
)


@dataclass
class Side:
    """One project and its objects."""

    tag: str
    project: Project
    manager: User
    annotator: User
    reviewer: User
    video: Video
    submitted: Masklet
    draft: Masklet
    lease_id: int
    fix_id: int
    export_job: Job
    round: Round


@dataclass
class World:
    a: Side
    b: Side
    admin: User
    version: ModelVersion
    invitation: Invitation
    users: dict[str, User | None] = field(default_factory=dict)

    def persona(self, name: str) -> User | None:
        return self.users[name]


def _frames(video: Video) -> None:
    for index in range(FRAMES):
        buffer = io.BytesIO()
        Image.fromarray(np.full((HEIGHT, WIDTH, 3), 40 * index, dtype=np.uint8)).save(
            buffer, format="JPEG"
        )
        default_storage.save(frame_key(video.pk, index), ContentFile(buffer.getvalue()))


def _side(tag: str) -> Side:
    name = f"{tag}-{A_MARKER}" if tag == "a" else f"{tag}-bravo"
    manager = do_create_user(f"{name}-manager", "pass-manager-1", "manager")
    annotator = do_create_user(f"{name}-annotator", "pass-annotator-1", "annotator")
    reviewer = do_create_user(f"{name}-reviewer", "pass-reviewer-1", "reviewer")
    project = do_create_project(f"project {name}", manager)
    do_set_membership(project, annotator, "annotator")
    do_set_membership(project, reviewer, "reviewer")

    video = ready_video(project, height=HEIGHT, width=WIDTH, frame_count=FRAMES, name=f"{name}.mp4")
    _frames(video)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    draft = drafts.do_create_object(annotator, lease, f"{name} draft")

    mask = square(HEIGHT, WIDTH, 4, 4, 10)
    submitted = submitted_masklet(video, annotator, {0: mask, 1: mask}, label=f"{name} cup")
    to_fix = submitted_masklet(video, annotator, {0: mask}, label=f"{name} box")
    assert to_fix.current_revision is not None
    do_review(to_fix.current_revision, reviewer, "unsatisfactory", flagged_frames=[0])
    fix = to_fix.assignments.get(kind="fix")

    key = f"exports/{project.pk}/{name}.zip"
    default_storage.save(key, ContentFile(b"PK\x05\x06" + b"\0" * 18))
    export_job = Job.objects.create(
        kind=Job.Kind.EXPORT,
        status=Job.Status.SUCCEEDED,
        project=project,
        created_by=manager,
        result={"key": key, "filename": f"{name}.zip"},
        finished_at=timezone.now(),
    )
    train_job = Job.objects.create(
        kind=Job.Kind.TRAIN, status=Job.Status.SUCCEEDED, project=project, created_by=manager
    )
    round_ = Round.objects.create(project=project, number=1, phase=3, job=train_job)
    default_storage.save(f"simulation/{project.pk}/plot.png", ContentFile(b"\x89PNG\r\n"))
    return Side(
        tag=tag,
        project=project,
        manager=manager,
        annotator=annotator,
        reviewer=reviewer,
        video=video,
        submitted=submitted,
        draft=draft,
        lease_id=lease.pk,
        fix_id=fix.pk,
        export_job=export_job,
        round=round_,
    )


def build_world() -> World:
    a, b = _side("a"), _side("b")
    admin = do_create_user("site-admin", "pass-admin-1", "admin")
    version = ModelVersion.objects.create(name="model-r1", config="test_tiny")
    invited = do_create_user("invited-person", "pass-invited-1", "annotator")
    do_set_membership(a.project, invited, "annotator")
    world = World(a=a, b=b, admin=admin, version=version, invitation=make_invitation(invited))
    world.users = {
        "anonymous": None,
        "annotator": a.annotator,
        "reviewer": a.reviewer,
        "manager": a.manager,
        "outside_annotator": b.annotator,
        "outside_reviewer": b.reviewer,
        "outside_manager": b.manager,
        "admin": admin,
    }
    return world


def url_kwargs(world: World, key: str) -> dict[str, Any]:
    """A value for every URL kwarg a route may take, all of project A (``key`` picks the masklet:
    the draft for the annotation routes, the submitted one elsewhere)."""
    a = world.a
    draft_routes = ("draft", "prompt", "propagate")
    masklet = a.draft if any(word in key for word in draft_routes) else a.submitted
    pk_by_basename = {"project": a.project.pk, "video": a.video.pk, "job": a.export_job.pk}
    basename = key.split(":", 1)[-1].split("-", 1)[0]
    return {
        "project_id": a.project.pk,
        "video_id": a.video.pk,
        "masklet_id": masklet.pk,
        "lease_id": a.lease_id,
        "assignment_id": a.fix_id,
        "job_id": a.export_job.pk,
        "round_id": a.round.pk,
        "version_id": world.version.pk,
        "user_id": a.annotator.pk,
        "pk": pk_by_basename.get(basename, a.project.pk),
        "index": 0,
        "name": "plot.png",
        "key": frame_key(a.video.pk, 0),
        "uidb64": world.invitation.uid,
        "token": world.invitation.token,
    }
