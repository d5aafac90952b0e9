"""Review statistics of a project: throughput per day and per reviewer, verdict shares."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from engine.models import Project, Review


@dataclass(frozen=True)
class ReviewerStats:
    reviewer: str
    reviews: int
    satisfactory: int
    unsatisfactory: int
    rejected: int
    active_days: int

    @property
    def reviews_per_active_day(self) -> float:
        return self.reviews / self.active_days if self.active_days else 0.0


@dataclass(frozen=True)
class ReviewStats:
    """Review throughput and rejection rates of one project.

    ``unsatisfactory_rate`` / ``reject_rate`` are shares of all reviews (0 when there are none);
    ``per_day`` is (UTC date, reviews) for days with at least one review.
    """

    total: int
    satisfactory: int
    unsatisfactory: int
    rejected: int
    per_day: list[tuple[date, int]] = field(default_factory=list)
    per_reviewer: list[ReviewerStats] = field(default_factory=list)

    @property
    def unsatisfactory_rate(self) -> float:
        return self.unsatisfactory / self.total if self.total else 0.0

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.total if self.total else 0.0

    @property
    def reviews_per_active_day(self) -> float:
        return self.total / len(self.per_day) if self.per_day else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "satisfactory": self.satisfactory,
            "unsatisfactory": self.unsatisfactory,
            "rejected": self.rejected,
            "unsatisfactory_rate": self.unsatisfactory_rate,
            "reject_rate": self.reject_rate,
            "reviews_per_active_day": self.reviews_per_active_day,
            "per_day": [{"day": d.isoformat(), "reviews": n} for d, n in self.per_day],
            "per_reviewer": [
                {**asdict(r), "reviews_per_active_day": r.reviews_per_active_day}
                for r in self.per_reviewer
            ],
        }


def review_stats(project: Project) -> ReviewStats:
    """Throughput (reviews per day and per reviewer) and verdict shares of a project."""
    reviews = Review.objects.filter(revision__masklet__video__project=project)
    ok = Q(verdict=Review.Verdict.SATISFACTORY)
    bad = Q(verdict=Review.Verdict.UNSATISFACTORY)
    rej = Q(verdict=Review.Verdict.REJECT)
    totals = reviews.aggregate(
        n=Count("id"),
        ok=Count("id", filter=ok),
        bad=Count("id", filter=bad),
        rej=Count("id", filter=rej),
    )
    per_day = [
        (row["day"], row["n"])
        for row in reviews.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    ]
    per_reviewer = [
        ReviewerStats(
            reviewer=row["reviewer__username"],
            reviews=row["n"],
            satisfactory=row["ok"],
            unsatisfactory=row["bad"],
            rejected=row["rej"],
            active_days=row["days"],
        )
        for row in reviews.annotate(day=TruncDate("created_at"))
        .values("reviewer__username")
        .annotate(
            n=Count("id"),
            ok=Count("id", filter=ok),
            bad=Count("id", filter=bad),
            rej=Count("id", filter=rej),
            days=Count("day", distinct=True),
        )
        .order_by("-n", "reviewer__username")
    ]
    return ReviewStats(
        total=totals["n"],
        satisfactory=totals["ok"],
        unsatisfactory=totals["bad"],
        rejected=totals["rej"],
        per_day=per_day,
        per_reviewer=per_reviewer,
    )
