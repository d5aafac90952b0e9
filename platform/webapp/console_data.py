"""What the manage page shows: the videos, the import/export choices, the automatic-masklet
settings a manager usually changes, and the project's latest jobs."""

from __future__ import annotations

from typing import Any

from engine.auto_masklets.generate import config_from_overrides
from engine.datasets.export import EXPORT_FORMATS
from engine.datasets.import_readers import IMPORT_FORMATS
from engine.models import Job, Masklet, Project, Video

FORMAT_LABELS = {
    "sav": "SA-V JSON",
    "davis": "DAVIS / YouTube-VOS PNG folders",
    "coco": "COCO RLE with track ids",
}

#: Import statuses offered on the page, the default first.
IMPORT_STATUSES = [
    (Masklet.Status.SUBMITTED, "Submitted for review (default)"),
    (Masklet.Status.VERIFIED, "Verified: ground truth, skips review"),
    (Masklet.Status.DRAFT, "Draft"),
]

#: Automatic-masklet settings shown as fields; any other goes in the advanced JSON box.
AUTO_FIELDS = ("points_per_side", "pred_iou_thresh", "stability_score_thresh", "max_objects")


def auto_defaults() -> dict[str, Any]:
    config = config_from_overrides({})
    return {
        "points_per_side": config.proposals.points_per_side,
        "pred_iou_thresh": config.proposals.pred_iou_thresh,
        "stability_score_thresh": config.proposals.stability_score_thresh,
        "max_objects": config.max_objects,
    }


def manage_context(project: Project) -> dict[str, Any]:
    videos = project.videos.all()
    return {
        "project": project,
        "phases": Project.Phase.choices,
        "videos": videos,
        "ready_videos": videos.filter(status=Video.Status.READY),
        "export_formats": [(f, FORMAT_LABELS.get(f, f)) for f in EXPORT_FORMATS],
        "import_formats": [(f, FORMAT_LABELS.get(f, f)) for f in IMPORT_FORMATS],
        "import_statuses": IMPORT_STATUSES,
        "masklet_kinds": Masklet.Kind.choices,
        "auto_defaults": auto_defaults(),
        "jobs": Job.objects.filter(project=project).order_by("-created_at", "-id")[:30],
    }
