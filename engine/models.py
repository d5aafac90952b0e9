"""ORM models of the data engine (DESIGN.md section 4).

State changes go through the ``do_*`` functions of the engine modules, not through ``save()``
calls scattered across views and tasks.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    """A person or a worker account. ``role`` is the site-wide role; projects add memberships."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)

    @property
    def is_manager(self) -> bool:
        return self.role in (Role.MANAGER, Role.ADMIN) or self.is_superuser

    @property
    def is_site_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser


class Project(models.Model):
    class Phase(models.IntegerChoices):
        SAM_PER_FRAME = 1, "Phase 1: SAM per frame"
        SAM2_MASK = 2, "Phase 2: SAM 2 mask propagation"
        SAM2_FULL = 3, "Phase 3: full SAM 2"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    phase = models.IntegerField(choices=Phase.choices, default=Phase.SAM2_FULL)
    annotation_fps = models.FloatField(default=6.0)
    model_config = models.CharField(max_length=64, default="sam2.1_hiera_t")
    # which tracked frames the project's video sessions keep as memory (model.memory_policy)
    memory_policy = models.CharField(
        max_length=16,
        choices=[
            ("all", "Nearest frames (SAM 2.1 default)"),
            ("reliable", "Confident frames only (occlusion-robust)"),
        ],
        default="all",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="projects_created"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"


class Video(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        DECODING = "decoding", "Decoding"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        # Imported annotations without the video's frames: kept out of the annotation and
        # review queues until the video file is attached (engine.videos.attach).
        NO_FRAMES = "no_frames", "No frames"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="videos")
    name = models.CharField(max_length=255)
    source_key = models.CharField(max_length=1024, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    error = models.TextField(blank=True)
    progress = models.FloatField(default=0.0)
    size_bytes = models.BigIntegerField(default=0)
    codec = models.CharField(max_length=64, blank=True)
    width = models.IntegerField(null=True, blank=True)
    height = models.IntegerField(null=True, blank=True)
    source_fps = models.FloatField(null=True, blank=True)
    annotation_fps = models.FloatField(default=6.0)
    duration = models.FloatField(null=True, blank=True)
    frame_count = models.IntegerField(default=0)
    thumbnail_key = models.CharField(max_length=1024, blank=True)
    # Extra descriptive fields, e.g. SA-V's video_environment / video_split on import.
    metadata = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return self.name

    def frame_key(self, index: int) -> str:
        return frame_key(self.pk, index)

    @property
    def frames_prefix(self) -> str:
        return f"videos/{self.pk}/frames/"


def frame_key(video_id: int, index: int) -> str:
    """Storage key of a decoded frame: derived from the video id and the 0-based frame index."""
    return f"videos/{video_id}/frames/{index:06d}.jpg"


class Masklet(models.Model):
    class Kind(models.TextChoices):
        MANUAL = "manual", "Manual"
        AUTO = "auto", "Auto"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        VERIFIED = "verified", "Verified"
        NEEDS_FIX = "needs_fix", "Needs fix"
        REJECTED = "rejected", "Rejected"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="masklets")
    object_id = models.IntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MANUAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    label = models.CharField(max_length=200, blank=True)
    current_revision = models.ForeignKey(
        "MaskletRevision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Bumped by every draft save (engine.annotation.drafts): writers send the version they last
    # saw, so a second tab saving over a newer draft gets a conflict instead of overwriting it.
    draft_version = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["video", "object_id"]
        constraints = [
            models.UniqueConstraint(fields=["video", "object_id"], name="one_object_id_per_video"),
        ]

    def __str__(self) -> str:
        return f"{self.video} #{self.object_id}"


class MaskletRevision(models.Model):
    """An immutable snapshot of a masklet's masks.

    ``frames`` maps the frame index (as a string, JSON keys) to ``{"rle": COCO RLE or None,
    "source": "click" | "propagated" | "brush" | "auto" | "import", "stability": float | None}``.
    """

    masklet = models.ForeignKey(Masklet, on_delete=models.CASCADE, related_name="revisions")
    number = models.IntegerField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    frames = models.JSONField(default=dict)
    edited_frames = models.JSONField(default=list)
    note = models.TextField(blank=True)
    #: The object's label when this revision was made (a draft may rename it).
    label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["masklet", "number"]
        constraints = [
            models.UniqueConstraint(fields=["masklet", "number"], name="revision_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.masklet} r{self.number}"


class Assignment(models.Model):
    class Kind(models.TextChoices):
        ANNOTATE = "annotate", "Annotate"
        FIX = "fix", "Fix"
        REVIEW = "review", "Review"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        LEASED = "leased", "Leased"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assignments",
    )
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="assignments")
    masklet = models.ForeignKey(
        Masklet, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments"
    )
    flagged_frames = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["kind", "state"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.video} ({self.state})"


class InteractionEvent(models.Model):
    """Append-only telemetry: the source of time per frame, clicks and edited frames."""

    class Kind(models.TextChoices):
        PROMPT = "prompt", "Prompt"
        PROPAGATE = "propagate", "Propagate"
        BRUSH = "brush", "Brush"
        UNDO = "undo", "Undo"
        FRAME_VIEW = "frame_view", "Frame view"
        CLICK = "click", "Click"
        BOX = "box", "Box"
        MASK = "mask", "Mask prompt"
        ERASER = "eraser", "Eraser"
        REDO = "redo", "Redo"
        SUBMIT = "submit", "Submit"
        OBJECT = "object", "Object added or deleted"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="events")
    masklet = models.ForeignKey(
        Masklet, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    frame_index = models.IntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} by {self.user_id} on video {self.video_id}"


class Review(models.Model):
    class Verdict(models.TextChoices):
        SATISFACTORY = "satisfactory", "Satisfactory"
        UNSATISFACTORY = "unsatisfactory", "Unsatisfactory"
        REJECT = "reject", "Reject as poorly defined"

    revision = models.ForeignKey(MaskletRevision, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    flagged_frames = models.JSONField(default=list, blank=True)
    frame_notes = models.JSONField(default=dict, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.verdict} by {self.reviewer_id} on revision {self.revision_id}"


class DatasetSnapshot(models.Model):
    """A frozen set of masklet revisions (usually the verified ones) for export or training."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    name = models.CharField(max_length=200, blank=True)
    revisions = models.ManyToManyField(MaskletRevision, related_name="snapshots")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"snapshot {self.pk}"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        PROMOTED = "promoted", "Promoted"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=200, unique=True)
    config = models.CharField(max_length=64)
    checkpoint_key = models.CharField(max_length=1024, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    training_snapshot = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CANDIDATE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="promoted"),
                name="one_promoted_model",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Round(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    number = models.IntegerField()
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="rounds"
    )
    phase = models.IntegerField(choices=Project.Phase.choices)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # The train job that runs the round (engine.training.rounds); one round per job.
    job = models.OneToOneField(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="round"
    )

    class Meta:
        ordering = ["project", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_number_unique"),
        ]

    def __str__(self) -> str:
        return f"round {self.number} of project {self.project_id}"


class ModelPromotion(models.Model):
    """One change of the promoted model version, kept as history (engine.training.versions).

    ``previous`` is the version that served before; a rollback re-promotes the ``previous`` of the
    promotion that made the current version serve."""

    class Action(models.TextChoices):
        PROMOTE = "promote", "Promoted"
        ROLLBACK = "rollback", "Rolled back to"

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotions")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    reason = models.CharField(max_length=500, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.version_id} (was {self.previous_id})"


class RoundSettings(models.Model):
    """When a project's retraining rounds start on their own (engine.training.triggers)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="round_settings")
    enabled = models.BooleanField(default=False)
    # A round starts once this many verified masklets are new since the last round (0: off).
    min_new_masklets = models.IntegerField(default=20)
    # ... or once this many hours passed since the last round started (0: off).
    interval_hours = models.FloatField(default=0.0)
    steps = models.IntegerField(default=200)
    # Videos held out for evaluation stay held out (never trained on), even if the split changes.
    heldout_video_ids = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"round settings of project {self.project_id}"


class Job(models.Model):
    """A long task: a row first, then a Celery message carrying only its id."""

    class Kind(models.TextChoices):
        INGEST = "ingest", "Ingest video"
        PROPAGATE = "propagate", "Propagate"
        AUTO_MASKLETS = "auto_masklets", "Automatic masklets"
        EXPORT = "export", "Export"
        IMPORT = "import", "Import"
        TRAIN = "train", "Train"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    args = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    attempt = models.IntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    video = models.ForeignKey(
        Video, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"


class DraftEdit(models.Model):
    """One frame's change in a masklet's draft, saved as it happens (engine.annotation.drafts).

    A draft is the masklet's current revision overlaid with its unconsumed edits in ``seq``
    order; submitting makes a revision and sets ``revision`` on the edits it consumed. All edits
    of one save share ``version`` (the masklet's ``draft_version`` after that save), which is
    what undo and redo step through. ``annotated=False`` removes the frame from the draft (undo
    of a frame's first edit); otherwise ``rle`` is the frame's mask, None when the object is
    absent.
    """

    class Source(models.TextChoices):
        CLICK = "click", "Click"
        BOX = "box", "Box"
        MASK = "mask", "Mask prompt"
        PROPAGATED = "propagated", "Propagated"
        BRUSH = "brush", "Brush"
        ERASER = "eraser", "Eraser"
        UNDO = "undo", "Undo"
        REDO = "redo", "Redo"

    masklet = models.ForeignKey(Masklet, on_delete=models.CASCADE, related_name="draft_edits")
    seq = models.IntegerField()
    version = models.IntegerField()
    frame_index = models.IntegerField()
    tool = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    # The revision frame source of the resulting mask ("click", "propagated", "brush").
    frame_source = models.CharField(max_length=12)
    annotated = models.BooleanField(default=True)
    rle = models.JSONField(null=True, blank=True)
    prompt = models.JSONField(null=True, blank=True)
    # For undo and redo: the version of the save they undid or re-applied.
    target_version = models.IntegerField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revision = models.ForeignKey(
        MaskletRevision,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="consumed_edits",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["masklet", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["masklet", "seq"], name="draft_edit_seq_unique"),
        ]
        indexes = [models.Index(fields=["masklet", "revision", "seq"])]

    def __str__(self) -> str:
        return f"{self.source} on frame {self.frame_index} of masklet {self.masklet_id}"


class ModelSession(models.Model):
    """Where an annotator's interactive model session for a video lives (DESIGN.md 5.3).

    The worker that built the session records itself here (its name and its direct queue), so
    the next click is routed to it; when it is gone, any interactive worker rebuilds the
    session by replaying the saved prompts and records itself instead. The session itself (the
    model's memory) is a cache in that worker's memory, never in the database.
    """

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="model_sessions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="model_sessions"
    )
    #: ``config:sha256`` of the model that serves it (a promotion changes it).
    model_key = models.CharField(max_length=200)
    worker = models.CharField(max_length=255)
    #: The queue that reaches that worker alone (Celery's ``<worker>.dq``); empty: none.
    queue = models.CharField(max_length=300, blank=True)
    last_used = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video", "user"], name="one_model_session_per_user"),
        ]

    def __str__(self) -> str:
        return f"session of {self.user_id} on video {self.video_id} at {self.worker}"


class QualityModel(models.Model):
    """A fitted masklet quality estimator of a project (engine.quality), newest = in use.

    ``params`` is the estimator as JSON (engine.quality.estimator.QualityEstimator.to_json):
    never a pickle. ``verdicts`` counts the reviewer verdicts it was trained on, so the next
    retraining waits for enough new ones.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quality_models")
    params = models.JSONField()
    verdicts = models.IntegerField()
    accepted = models.IntegerField()
    failed = models.IntegerField()
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-created_at", "-id"]

    def __str__(self) -> str:
        return f"quality model {self.pk} of project {self.project_id}"


class QualitySettings(models.Model):
    """A project's quality triage settings; auto-accept is off until a manager switches it on.

    ``auto_accept_threshold`` is the least calibrated probability of acceptance (1 - the
    estimator's failure probability) at which a submitted masklet is verified without a
    reviewer.
    """

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="quality_settings"
    )
    auto_accept = models.BooleanField(default=False)
    auto_accept_threshold = models.FloatField(default=0.95)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"quality settings of project {self.project_id}"


class RevisionQuality(models.Model):
    """Quality features, frame suspicion and the estimate of one masklet revision.

    ``features`` maps engine.quality.features.FEATURE_NAMES to values (None: not measurable);
    ``frame_suspicion`` maps the frame index (string) to a score in [0, 1]; ``marks`` are the
    frames shown on the timelines. ``failure_probability`` is from ``quality_model`` (None
    while no estimator is trained). An auto-accepted revision keeps the probability and the
    threshold that accepted it: the audit trail of a verdict no person gave.
    """

    revision = models.OneToOneField(
        MaskletRevision, on_delete=models.CASCADE, related_name="quality"
    )
    features = models.JSONField(default=dict)
    frame_suspicion = models.JSONField(default=dict)
    marks = models.JSONField(default=list)
    jitter = models.FloatField()
    failure_probability = models.FloatField(null=True, blank=True)
    quality_model = models.ForeignKey(
        QualityModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    auto_accepted = models.BooleanField(default=False)
    auto_accepted_at = models.DateTimeField(null=True, blank=True)
    auto_accept_threshold = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"quality of revision {self.revision_id}"
