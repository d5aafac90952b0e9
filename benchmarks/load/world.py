"""The platform's data for the load scenario, made in a Django child process (``python -m
benchmarks.load.world N M MASKLETS CHECKPOINT_DIR``; prints one ``WORLD {json}`` line).

- a test_tiny SAM 2 checkpoint with random weights in the official format, registered and
  promoted through ``manage.py register_model`` (what the workers serve);
- project ``load-annotate`` (phase 3: clicks through SAM 2's memory, propagation) with one
  ready video per annotator, its frames in storage;
- project ``load-review`` with ``MASKLETS`` submitted masklets, each on its own video (so a
  reviewer's browser cache never holds a masklet's frames already), authored by ``author``;
- N annotators and M reviewers with an API token and a logged-in session cookie each.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.load.scene import FRAMES, HEIGHT, WIDTH, brush_rle, frame_jpeg

PASSWORD = "load-pass-1-not-secret"


def make_checkpoint(path: Path) -> None:
    """Random test_tiny weights saved as Meta's format; the object-score head is biased so the
    object is always present (non-empty masks, as with trained weights)."""
    import torch

    from model.build import build_sam2
    from model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = build_sam2("test_tiny")
    head: Any = net.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[2].bias.fill_(30.0)
    save_checkpoint(net, path)


def _video(project: Any, name: str, frames: list[bytes]) -> Any:
    from engine.models import Video, frame_key
    from engine.videos import storage

    video = Video.objects.create(
        project=project,
        name=name,
        status=Video.Status.READY,
        width=WIDTH,
        height=HEIGHT,
        frame_count=FRAMES,
    )
    for index, data in enumerate(frames):
        storage.put_file(frame_key(video.pk, index), io.BytesIO(data))
    return video


def _identity(user: Any) -> dict[str, Any]:
    """The user's API token and a real login session (``force_login`` through Django's auth
    and session machinery, the state the login page leaves) for pages and frames."""
    from django.test import Client
    from rest_framework.authtoken.models import Token

    client = Client()
    client.force_login(user)
    return {
        "username": user.username,
        "token": Token.objects.get_or_create(user=user)[0].key,
        "session": client.cookies["sessionid"].value,
    }


def build(annotators: int, reviewers: int, masklets: int, checkpoint_dir: Path) -> dict[str, Any]:
    """Everything in the module docstring; returns the identities and ids (JSON-safe)."""
    from django.core.management import call_command

    from engine.accounts.projects import do_create_project, do_create_user, do_set_membership
    from engine.masklets.revisions import FrameMask, do_create_masklet
    from engine.masks.rle import normalize_rle
    from engine.models import Project
    from engine.review.submission import do_submit_masklet

    checkpoint = checkpoint_dir / "test_tiny.pt"
    make_checkpoint(checkpoint)
    out = io.StringIO()
    call_command(
        "register_model",
        str(checkpoint),
        "--name",
        "load-test-tiny",
        "--config",
        "test_tiny",
        "--promote",
        stdout=out,
    )
    frames = [frame_jpeg(i) for i in range(FRAMES)]
    boss = do_create_user("load-manager", PASSWORD, "manager")
    annotate = do_create_project("load-annotate", boss)
    review = do_create_project("load-review", boss)
    for project in (annotate, review):
        project.phase = Project.Phase.SAM2_FULL
        project.save(update_fields=["phase"])
    people = []
    for n in range(annotators):
        user = do_create_user(f"annotator{n}", PASSWORD, "annotator")
        do_set_membership(annotate, user, "annotator")
        _video(annotate, f"annotate{n}.mp4", frames)
        people.append(_identity(user))
    author = do_create_user("author", PASSWORD, "annotator")
    do_set_membership(review, author, "annotator")
    masks = {i: FrameMask(normalize_rle(brush_rle(i)), "click") for i in range(FRAMES)}
    for n in range(masklets):
        video = _video(review, f"review{n}.mp4", frames)
        do_submit_masklet(do_create_masklet(video, author=author, frames=masks), author)
    checkers = []
    for n in range(reviewers):
        user = do_create_user(f"reviewer{n}", PASSWORD, "reviewer")
        do_set_membership(review, user, "reviewer")
        checkers.append(_identity(user))
    return {
        "model": out.getvalue().strip(),
        "annotate_project": annotate.pk,
        "review_project": review.pk,
        "annotators": people,
        "reviewers": checkers,
    }


def main() -> None:
    import django

    django.setup()
    n, m, masklets = (int(v) for v in sys.argv[1:4])
    world = build(n, m, masklets, Path(sys.argv[4]))
    print("WORLD " + json.dumps(world), flush=True)


if __name__ == "__main__":
    main()
