"""One-time links that let a person set their own password (invitations and password resets).

An invited account is active with an unusable password: nobody can log in as it until its
holder opens the link and chooses a password. The link carries Django's password-reset token,
which hashes the password and the last login, so it stops working once used (or once the
password changes another way) and after ``PASSWORD_RESET_TIMEOUT`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from engine.models import User


@dataclass(frozen=True)
class Invitation:
    """What the web layer turns into a link (``/invite/<uid>/<token>/``)."""

    user_id: int
    uid: str
    token: str

    @property
    def path(self) -> str:
        return f"/invite/{self.uid}/{self.token}/"


def make_invitation(user: User) -> Invitation:
    """A one-time set-password link for ``user`` (call after their password was last set)."""
    return Invitation(
        user_id=user.pk,
        uid=urlsafe_base64_encode(force_bytes(user.pk)),
        token=default_token_generator.make_token(user),
    )
