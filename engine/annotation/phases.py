"""Phase policies: which annotation tools a project's phase allows (DESIGN.md section 5.2).

- Phase 1: SAM on each frame (the image predictor) plus brush and eraser; no propagation.
- Phase 2: the per-frame tools of phase 1, plus propagation by SAM 2 from mask prompts only.
- Phase 3: full SAM 2: clicks and boxes on any frame refine the masklet through memory,
  propagation, brush and eraser.

The server enforces the policy: every saved edit names its tool, and :func:`check_tool` refuses
a tool the phase does not allow before anything is written.
"""

from __future__ import annotations

from engine.errors import InvalidInput, PermissionDenied
from engine.models import Project

IMAGE_CLICK = "image_click"
IMAGE_BOX = "image_box"
VIDEO_CLICK = "video_click"
VIDEO_BOX = "video_box"
PROPAGATE = "propagate"
BRUSH = "brush"
ERASER = "eraser"

TOOLS = (IMAGE_CLICK, IMAGE_BOX, VIDEO_CLICK, VIDEO_BOX, PROPAGATE, BRUSH, ERASER)

_PER_FRAME = (IMAGE_CLICK, IMAGE_BOX, BRUSH, ERASER)
TOOLS_BY_PHASE: dict[int, tuple[str, ...]] = {
    Project.Phase.SAM_PER_FRAME: _PER_FRAME,
    Project.Phase.SAM2_MASK: (*_PER_FRAME, PROPAGATE),
    Project.Phase.SAM2_FULL: (VIDEO_CLICK, VIDEO_BOX, PROPAGATE, BRUSH, ERASER),
}


class ToolNotAllowed(PermissionDenied):
    """The project's phase does not allow this tool (403)."""


def allowed_tools(project: Project) -> tuple[str, ...]:
    """The tools of the project's phase, in a stable order."""
    try:
        return TOOLS_BY_PHASE[project.phase]
    except KeyError:
        raise InvalidInput(f"the project has an unknown phase {project.phase!r}") from None


def check_tool(project: Project, tool: str) -> None:
    """Raise :class:`ToolNotAllowed` (or ``InvalidInput`` for an unknown tool) unless the
    project's phase allows ``tool``."""
    if tool not in TOOLS:
        raise InvalidInput(f"unknown tool {tool!r}; the tools are {', '.join(TOOLS)}")
    allowed = allowed_tools(project)
    if tool not in allowed:
        label = Project.Phase(project.phase).label
        raise ToolNotAllowed(f"{label} does not allow {tool}; its tools are {', '.join(allowed)}")
