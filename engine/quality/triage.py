"""Review-queue triage: likely failures first, once the project has a trained estimator.

:func:`order_by_failure` orders a queryset of masklets by their current revision's failure
probability under the project's *current* estimator (highest first), then by the queue's plain
order (oldest change first). Masklets without such a score (no estimator trained yet, or not
scored yet) keep the plain order after the scored ones; with no estimator at all the order is
exactly the plain one.
"""

from __future__ import annotations

from django.db.models import Case, F, FloatField, OuterRef, QuerySet, Subquery, Value, When

from engine.models import Masklet, QualityModel

PLAIN_ORDER = ("updated_at", "id")


def order_by_failure(masklets: QuerySet[Masklet]) -> QuerySet[Masklet]:
    """``masklets`` ordered likely failures first (see the module docstring)."""
    current = (
        QualityModel.objects.filter(project=OuterRef("video__project"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    risk = Case(
        When(
            current_revision__quality__quality_model_id=Subquery(current),
            then=F("current_revision__quality__failure_probability"),
        ),
        default=Value(None),
        output_field=FloatField(),
    )
    return masklets.annotate(failure_risk=risk).order_by(
        F("failure_risk").desc(nulls_last=True), *PLAIN_ORDER
    )
