"""The errors the review flow raises beside the generic ones of :mod:`engine.errors`."""

from __future__ import annotations

from engine.accounts.access import AccessDenied
from engine.errors import Conflict, InvalidInput


class InvalidReview(InvalidInput):
    """Bad input to a review or fix: unknown verdict, frame outside the video, NUL byte... (400)."""


class SelfReview(AccessDenied):
    """The reviewer authored (part of) the revision under review (403)."""


class NotReviewable(Conflict):
    """The masklet or assignment is not in a state that allows this action (409)."""
