"""What each scenario's jobs must have left behind: outputs complete, nothing lost or doubled.

Each check returns ``(line, ok)``: what it counted, and whether every count is as it must be.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

Check = tuple[str, bool]


def _media() -> Path:
    from django.conf import settings

    return Path(settings.MEDIA_ROOT)


def check_ingest(video_ids: list[int]) -> Check:
    """Each video ready with exactly its frame count of frames in storage, named 0..n-1."""
    from engine.models import Video

    wrong, frames_total = [], 0
    for video in Video.objects.filter(pk__in=video_ids):
        stored = sorted((_media() / "videos" / str(video.pk) / "frames").glob("*.jpg"))
        frames_total += len(stored)
        expected = [f"{i:06d}.jpg" for i in range(video.frame_count)]
        if video.status != "ready" or [p.name for p in stored] != expected:
            wrong.append((video.pk, video.status, video.frame_count, len(stored)))
    return f"videos {len(video_ids)}, frames stored {frames_total}, wrong {wrong}", not wrong


def check_exports(job_ids: list[int]) -> Check:
    """Each export's zip whole and the same as the others; no zip without its job."""
    from engine.models import Job

    contents, wrong = set(), []
    for job in Job.objects.filter(pk__in=job_ids):
        key = job.result.get("key", "")
        path = _media() / key
        if job.status != "succeeded" or not key or not path.exists():
            wrong.append((job.pk, job.status, key))
            continue
        with zipfile.ZipFile(path) as zf:
            if zf.testzip() is not None:
                wrong.append((job.pk, "corrupt zip", key))
            contents.add(tuple(sorted((i.filename, i.CRC) for i in zf.infolist())))
    zips = sorted(p.name for p in _media().rglob("*.zip"))
    stray = len(zips) - len(job_ids)
    ok = not wrong and len(contents) == 1 and stray == 0
    line = (
        f"exports {len(job_ids)}, zips in storage {len(zips)}, distinct contents "
        f"{len(contents)}, wrong {wrong}"
    )
    return line, ok


def check_propagation(job_ids: list[int], masklets: dict[int, int], bases: dict[int, int]) -> Check:
    """Each succeeded run: one draft version (base + 1), one edit per frame in it (each with a
    mask), its marker counting exactly the frames, one propagate event; nothing else written."""
    from engine.models import DraftEdit, InteractionEvent, Job, Masklet

    wrong: list[tuple[Any, ...]] = []
    edits = masks = events = 0
    for job in Job.objects.filter(pk__in=job_ids).order_by("pk"):
        masklet = Masklet.objects.select_related("video").get(pk=masklets[job.pk])
        version, n = bases[job.pk] + 1, masklet.video.frame_count
        rows = DraftEdit.objects.filter(masklet=masklet)
        per_frame = Counter(rows.filter(version=version).values_list("frame_index", flat=True))
        marker = rows.filter(prompt__run__job=job.pk).first()
        passes = (marker.prompt or {}).get("run", {}).get("passes") if marker else None
        n_events = InteractionEvent.objects.filter(masklet=masklet, kind="propagate").count()
        edits += rows.count()
        masks += rows.filter(version=version, rle__isnull=False).count()
        events += n_events
        if job.status != "succeeded":
            continue  # the summary of jobs reports it
        problems = []
        if masklet.draft_version != version:
            problems.append(f"draft version {masklet.draft_version}")
        if per_frame != dict.fromkeys(range(n), 1):
            problems.append(f"edits per frame {dict(per_frame)}")
        if rows.filter(version=version, rle__isnull=True).exists():
            problems.append("empty masks")
        if rows.exclude(version__in=(version - 1, version)).exists():
            problems.append("edits of other versions")
        if passes != [[False, n]]:
            problems.append(f"marker passes {passes}")
        if n_events != 1:
            problems.append(f"{n_events} propagate events")
        if problems:
            wrong.append((job.pk, *problems))
    line = (
        f"runs {len(job_ids)}, draft edits {edits}, masks {masks}, propagate events {events}, "
        f"wrong {wrong}"
    )
    return line, not wrong


def check_auto_masklets(job_ids: list[int]) -> Check:
    """Each succeeded job: its video's masklets are exactly the job's result, each with one
    revision covering every frame; no masklet of a killed attempt left."""
    from engine.masklets.revisions import revision_frames
    from engine.models import Job, Masklet, MaskletRevision

    wrong: list[tuple[Any, ...]] = []
    n_masklets = n_masks = 0
    for job in Job.objects.filter(pk__in=job_ids).order_by("pk"):
        on_video = list(Masklet.objects.filter(video=job.video_id).order_by("pk"))
        n_masklets += len(on_video)
        if job.status != "succeeded":
            if on_video:
                wrong.append((job.pk, job.status, f"{len(on_video)} masklets left"))
            continue
        ids = [m.pk for m in on_video]
        if ids != sorted(job.result.get("masklet_ids", [])) or not ids:
            wrong.append((job.pk, f"masklets {ids} vs result {job.result.get('masklet_ids')}"))
        frame_count = job.video.frame_count if job.video else 0
        for masklet in on_video:
            revisions = MaskletRevision.objects.filter(masklet=masklet).count()
            assert masklet.current_revision is not None
            frames = revision_frames(masklet.current_revision)
            n_masks += sum(f.rle is not None for f in frames.values())
            if revisions != 1 or sorted(frames) != list(range(frame_count)):
                wrong.append((job.pk, masklet.pk, f"{revisions} revisions, {len(frames)} frames"))
    line = f"jobs {len(job_ids)}, masklets {n_masklets}, masks {n_masks}, wrong {wrong}"
    return line, not wrong


def check_rounds(job_ids: list[int]) -> Check:
    """One round row per job, numbered 1..n; one candidate version per succeeded round; one
    promoted version; every stored checkpoint belongs to a version (none orphaned or doubled)."""
    from engine.models import Job, ModelVersion, Round
    from engine.videos import storage

    wrong: list[tuple[Any, ...]] = []
    jobs = list(Job.objects.filter(pk__in=job_ids).order_by("pk"))
    rounds = list(Round.objects.filter(job__in=jobs).order_by("number"))
    numbers = [r.number for r in rounds]
    if numbers != list(range(1, len(jobs) + 1)):
        wrong.append(("round numbers", numbers))
    for job in jobs:
        mine = ModelVersion.objects.filter(name__endswith=f" · job {job.pk}")
        expected = 1 if job.status == "succeeded" else mine.count()
        if mine.count() != expected:
            wrong.append((job.pk, job.status, f"{mine.count()} candidate versions"))
    versions = ModelVersion.objects.all()
    promoted = versions.filter(status=ModelVersion.Status.PROMOTED).count()
    if promoted != 1:
        wrong.append(("promoted versions", promoted))
    referenced = set(versions.values_list("checkpoint_key", flat=True))
    stored = set(storage.iter_keys("models/sha256/"))
    if stored != referenced:
        wrong.append(("orphaned", sorted(stored - referenced), "missing", referenced - stored))
    line = (
        f"rounds {len(rounds)}, model versions {versions.count()} ({promoted} promoted), "
        f"checkpoints stored {len(stored)}, wrong {wrong}"
    )
    return line, not wrong
