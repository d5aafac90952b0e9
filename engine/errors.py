"""The domain's errors. ``engine`` raises these and knows no HTTP; the web layer maps each class
to a status code in one place (``api.errors`` for the REST API, ``webapp.errors`` for pages).

Every error's message is written for the person who sent the request: it says what was wrong
and, where it helps, what to do instead. Messages never name objects the user may not see.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the domain raises on purpose."""

    #: Short machine-readable code, returned beside the message by the API.
    code = "error"


class InvalidInput(EngineError, ValueError):
    """The request's values are wrong: out of range, malformed, of the wrong type (400)."""

    code = "invalid"


class NotFound(EngineError):
    """No such object, or one the user may not see: the two are indistinguishable (404)."""

    code = "not_found"


class PermissionDenied(EngineError):
    """The user sees the object but their role does not allow this action (403)."""

    code = "permission_denied"


class Conflict(EngineError):
    """The object changed or is in a state that forbids the action (409): a stale revision,
    a masklet already reviewed, a job already finished."""

    code = "conflict"


class Gone(EngineError):
    """The object existed but its content is no longer available (410)."""

    code = "gone"


class Unavailable(EngineError):
    """A dependency the action needs is missing or down, e.g. no model configured (503)."""

    code = "unavailable"
