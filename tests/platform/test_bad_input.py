"""Malformed REST input (ids, pagination, deep JSON, NUL, project options) is a 4xx that writes
nothing; each case here used to be a 500 or to be accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.jobs.lifecycle import do_create_job
from engine.models import Job, Masklet, Project, Video
from tests._clients import api_client

DEEP = 100_000


def _rows() -> tuple[int, int, int, int]:
    return (
        Project.objects.count(),
        Job.objects.count(),
        Video.objects.count(),
        Masklet.objects.count(),
    )


def _stored(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "url",
    [
        "/api/projects/abc/videos/",
        "/api/projects/²/videos/",
        "/api/projects/--5/videos/",
        "/api/projects/99999999999999999999/videos/",
        "/api/projects/99999999999999999999/",
        "/api/jobs/²/",
        "/api/jobs/99999999999999999999/",
        "/api/videos/٣/",
    ],
)
def test_ids_that_are_not_ascii_numbers_are_404(project, manager, url: str) -> None:
    response = api_client(manager).get(url)
    assert response.status_code == 404, response.content


def test_video_upload_to_a_non_numeric_project_is_404(project, manager, settings) -> None:
    before = _rows()
    response = api_client(manager).post("/api/projects/²/videos/", {}, format="multipart")
    assert response.status_code == 404
    assert _rows() == before
    assert _stored(Path(settings.MEDIA_ROOT)) == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=99999999999999999999", 200),
        ("offset=99999999999999999999", 200),
        ("limit=5&offset=0000000000000000000001", 200),
        ("limit=-1", 400),
        ("limit=0", 400),
        ("limit=abc", 400),
        ("limit=٣", 400),
        ("offset=²", 400),
        ("offset=-3", 400),
    ],
)
@pytest.mark.parametrize("path", ["/api/jobs/", "/api/projects/", "/api/videos/"])
def test_pagination_clamps_large_values_and_refuses_malformed_ones(
    project, manager, path: str, query: str, code: int
) -> None:
    # given: one row of each list, so the page query reaches the database
    do_create_job(Job.Kind.EXPORT, project=project, created_by=manager)
    Video.objects.create(project=project, name="v.mp4", width=8, height=6)
    # when
    response = api_client(manager).get(f"{path}?{query}")
    # then
    assert response.status_code == code, response.content
    if code == 400:
        assert "must be a whole number" in response.json()["detail"]


def test_large_limit_is_clamped_to_the_maximum(project, manager) -> None:
    response = api_client(manager).get("/api/projects/?limit=99999999999999999999")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        "[" * DEEP + "]" * DEEP,
        '{"name": "deep", "description": ' + "[" * DEEP + "]" * DEEP + "}",
        '{"name": "deep", "description": ' + "[" * 200 + "]" * 200 + "}",
    ],
    ids=["top-level", "in-a-field", "200-deep"],
)
def test_deeply_nested_json_is_400(project, manager, body: str) -> None:
    before = _rows()
    response = api_client(manager).post(
        "/api/projects/", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nests too deeply" in response.json()["detail"]
    assert _rows() == before


def test_deeply_nested_json_is_400_on_exports(project, manager) -> None:
    before = _rows()
    response = api_client(manager).post(
        f"/api/projects/{project.pk}/exports/",
        data='{"format": "sav", "videos": ' + "[" * DEEP + "]" * DEEP + "}",
        content_type="application/json",
    )
    assert response.status_code == 400
    assert _rows() == before


def test_project_with_a_model_config_is_created_with_it(manager) -> None:
    response = api_client(manager).post(
        "/api/projects/",
        {"name": "Small model", "annotation_fps": 6, "model_config": "sam2.1_hiera_s"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["model_config"] == "sam2.1_hiera_s"
    assert Project.objects.get(name="Small model").model_config == "sam2.1_hiera_s"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Bad model", "model_config": "sam9_giant"},
        {"name": "Bad model", "model_config": "sam2.1\x00_hiera_s"},
        {"name": "Nul\x00name"},
        {"name": "Nul description", "description": "a\x00b"},
        {"name": "NaN fps", "annotation_fps": "NaN"},
        {"name": "Phase 7", "phase": 7},
    ],
)
def test_bad_project_fields_are_400(manager, fields: dict[str, object]) -> None:
    before = _rows()
    response = api_client(manager).post(
        "/api/projects/", data=json.dumps(fields), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert _rows() == before


def test_nul_in_import_options_is_400(project, manager, settings) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    example = Path(__file__).parents[1] / "engine" / "data" / "sav_example"
    content = (example / "sav_000001_manual.json").read_bytes()
    before = _rows()
    response = api_client(manager).post(
        f"/api/projects/{project.pk}/imports/",
        {"file": SimpleUploadedFile("sav_000001_manual.json", content), "video": "cup\x00.mp4"},
        format="multipart",
    )
    assert response.status_code == 400
    assert _rows() == before
    assert _stored(Path(settings.MEDIA_ROOT)) == []


@pytest.mark.parametrize("counts", ["garbage!!", "", "0", "1" * 30, [-5, 16 * 20 + 5], [3, 4]])
def test_fix_resubmit_with_an_invalid_rle_is_400_and_stores_nothing(
    project, annotator, reviewer, counts: object
) -> None:
    from engine.models import MaskletRevision
    from engine.review.verdicts import do_review
    from tests._masklets import ready_video, square, submitted_masklet

    # given: a masklet sent back for a fix
    video = ready_video(project, height=16, width=20, frame_count=4)
    masklet = submitted_masklet(video, annotator, {i: square(16, 20, i, i, 4) for i in range(4)})
    assert masklet.current_revision is not None
    fix = do_review(masklet.current_revision, reviewer, "unsatisfactory", [1]).fix_assignment
    assert fix is not None
    revisions = MaskletRevision.objects.count()
    # when
    response = api_client(annotator).post(
        f"/api/fixes/{fix.pk}/resubmit/",
        {
            "base_revision": masklet.current_revision_id,
            "frames": {"1": {"size": [16, 20], "counts": counts}},
        },
        format="json",
    )
    # then
    assert response.status_code == 400, response.content
    assert MaskletRevision.objects.count() == revisions
