"""Run in a child process under ``dataengine.settings_production`` (tests/security/
test_deploy_profile.py): migrate a fresh SQLite database, then probe the HTTPS redirect, the
security headers and the login lockout on the login page and ``/api/token/``. Prints one JSON
object with what it saw."""

from __future__ import annotations

import json
from typing import Any

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from engine.accounts.projects import do_create_user  # noqa: E402

HOST = "engine.example.org"
HTTPS: dict[str, Any] = {
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_HOST": HOST,
    "REMOTE_ADDR": "203.0.113.7",
}


def main() -> None:
    call_command("migrate", verbosity=0, interactive=False)
    do_create_user("victim", "the-right-password-42", "annotator")
    client = Client()
    seen: dict[str, object] = {}

    plain = client.get("/login/", HTTP_HOST=HOST)
    seen["http_status"] = plain.status_code
    seen["http_location"] = plain.get("Location", "")

    page = client.get("/login/", **HTTPS)
    seen["login_status"] = page.status_code
    seen["hsts"] = page.get("Strict-Transport-Security", "")
    seen["csp"] = page.get("Content-Security-Policy", "")
    seen["frame_options"] = page.get("X-Frame-Options", "")

    wrong = {"username": "victim", "password": "not-it"}
    seen["token_wrong"] = [client.post("/api/token/", wrong, **HTTPS).status_code for _ in range(6)]
    right = client.post(
        "/api/token/", {"username": "victim", "password": "the-right-password-42"}, **HTTPS
    )
    seen["token_right_after_lockout"] = right.status_code
    seen["token_right_body"] = right.content.decode()[:200]

    do_create_user("other", "other-password-42", "annotator")
    login_wrong = [
        Client(enforce_csrf_checks=False)
        .post("/login/", {"username": "other", "password": "nope"}, **HTTPS)
        .status_code
        for _ in range(6)
    ]
    seen["login_wrong"] = login_wrong
    seen["login_right_after_lockout"] = (
        Client()
        .post("/login/", {"username": "other", "password": "other-password-42"}, **HTTPS)
        .status_code
    )
    # Another user from the same address is not locked out.
    do_create_user("third", "third-password-42", "annotator")
    seen["token_other_user"] = client.post(
        "/api/token/", {"username": "third", "password": "third-password-42"}, **HTTPS
    ).status_code
    print("PROBE " + json.dumps(seen))


if __name__ == "__main__":
    main()
