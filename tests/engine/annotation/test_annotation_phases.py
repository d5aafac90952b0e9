"""Phase policies: each phase's tools, and edits refused for a tool the phase forbids."""

from __future__ import annotations

import pytest

from engine.annotation import drafts, leases, phases
from engine.errors import InvalidInput
from engine.models import DraftEdit
from tests.engine.annotation._annotation import box_mask, click, propagated, stroke, video


@pytest.mark.parametrize(
    ("phase", "tools"),
    [
        (1, {"image_click", "image_box", "brush", "eraser"}),
        (2, {"image_click", "image_box", "brush", "eraser", "propagate"}),
        (3, {"video_click", "video_box", "propagate", "brush", "eraser"}),
    ],
)
def test_each_phase_allows_its_tools_only(project, phase, tools):
    project.phase = phase
    assert set(phases.allowed_tools(project)) == tools
    for tool in tools:
        phases.check_tool(project, tool)
    for tool in set(phases.TOOLS) - tools:
        with pytest.raises(phases.ToolNotAllowed, match=f"Phase {phase}.*does not allow {tool}"):
            phases.check_tool(project, tool)
    with pytest.raises(InvalidInput, match="unknown tool"):
        phases.check_tool(project, "lasso")


def test_edits_are_checked_against_the_phase(project, annotator):
    project.phase = 1
    project.save()
    video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    masklet = drafts.do_create_object(annotator, lease)
    v = drafts.do_record_edits(
        annotator, masklet, 0, [click(0, box_mask(1, 1), tool="image_click")]
    )
    v = drafts.do_record_edits(annotator, masklet, v, [stroke(0, box_mask(2, 2), "eraser")])
    for refused in (click(1, box_mask(1, 1)), propagated(1, box_mask(1, 1))):
        with pytest.raises(phases.ToolNotAllowed, match="Phase 1"):
            drafts.do_record_edits(annotator, masklet, v, [refused])
    assert DraftEdit.objects.count() == 2
