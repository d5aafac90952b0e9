"""Who may call what: the one declared access policy of every endpoint.

Keys are those of :mod:`tests.security.endpoints` (``api:<url name>``, ``web:<url name>``,
``admin``) and a method. The permission matrix (test_permission_matrix.py) calls every endpoint
of the URLconf and of the OpenAPI schema as every persona, with project A's ids, and fails on an
endpoint that has no entry here, so no new endpoint escapes it.

A level names the personas who pass; everyone else must be refused: anonymous and every persona
outside project A with 401/403/404 (or the login redirect), a member of A with 403/404 (or a
400/409 when the body is checked before the role), never a 2xx, and nothing may change.
"""

from __future__ import annotations

from typing import Final

Level = frozenset[str]

_MEMBERS = {"annotator", "reviewer", "manager", "admin"}
_OUTSIDE = {"outside_annotator", "outside_reviewer", "outside_manager"}

#: Anyone, logged in or not.
PUBLIC: Final[Level] = frozenset({"anonymous", *_MEMBERS, *_OUTSIDE})
#: Any account; what it returns is scoped to the caller's projects (no A data to outsiders).
AUTHENTICATED: Final[Level] = frozenset({*_MEMBERS, *_OUTSIDE})
#: Members of the object's project (any role); site admins everywhere.
MEMBER: Final[Level] = frozenset(_MEMBERS)
#: The project's annotators (and managers, who may annotate).
ANNOTATOR: Final[Level] = frozenset({"annotator", "manager", "admin"})
#: The project's reviewers (and managers).
REVIEWER: Final[Level] = frozenset({"reviewer", "manager", "admin"})
#: The project's managers.
MANAGER: Final[Level] = frozenset({"manager", "admin"})
#: Accounts whose site role is manager (model versions serve every project; new projects).
SITE_MANAGER: Final[Level] = frozenset({"manager", "outside_manager", "admin"})
#: Site admins only.
SITE_ADMIN: Final[Level] = frozenset({"admin"})
#: The holder of the lease or fix assignment only (annotator A holds them in the world).
OWNER: Final[Level] = frozenset({"annotator"})
#: The holder, or a manager of the project (who may look at or return someone's work).
OWNER_OR_MANAGER: Final[Level] = frozenset({"annotator", "manager", "admin"})
#: Nobody among the personas (Django's admin site needs is_staff, which no role gives).
STAFF_ONLY: Final[Level] = frozenset()

POLICY: Final[dict[tuple[str, str], Level]] = {
    ("admin", "GET"): STAFF_ONLY,
    # --- API: accounts, schema -----------------------------------------------------------
    ("api:api-token", "POST"): PUBLIC,
    ("api:api-schema", "GET"): PUBLIC,
    ("api:api-docs", "GET"): PUBLIC,
    ("api:api-root", "GET"): AUTHENTICATED,
    # --- API: projects, videos, datasets -------------------------------------------------
    ("api:project-list", "GET"): AUTHENTICATED,
    ("api:project-list", "POST"): SITE_MANAGER,
    ("api:project-detail", "GET"): MEMBER,
    ("api:project-videos", "GET"): MEMBER,
    ("api:project-videos", "POST"): MANAGER,
    ("api:project-phase", "POST"): MANAGER,
    ("api:video-list", "GET"): AUTHENTICATED,
    ("api:video-detail", "GET"): MEMBER,
    ("api:video-attach-file", "POST"): MANAGER,
    ("api:video-remove-api", "POST"): MANAGER,
    ("api:dataset-export", "POST"): MANAGER,
    ("api:dataset-export-download", "GET"): MANAGER,
    ("api:dataset-import", "POST"): MANAGER,
    ("api:video-auto-masklets", "POST"): MANAGER,
    # --- API: team -----------------------------------------------------------------------
    ("api:project-members", "GET"): MANAGER,
    ("api:project-members", "POST"): MANAGER,
    ("api:project-member-detail", "PATCH"): MANAGER,
    ("api:project-member-detail", "DELETE"): MANAGER,
    # --- API: jobs -----------------------------------------------------------------------
    ("api:job-list", "GET"): AUTHENTICATED,
    ("api:job-detail", "GET"): MEMBER,
    ("api:job-cancel", "POST"): MANAGER,
    ("api:project-jobs", "GET"): MEMBER,
    ("api:jobs-overview", "GET"): SITE_MANAGER,
    ("api:job-retry", "POST"): MANAGER,
    # --- API: annotation -----------------------------------------------------------------
    ("api:api-annotation-next", "POST"): ANNOTATOR,
    ("api:api-annotation-leases", "GET"): MEMBER,  # ?project= (the matrix passes A's)
    ("api:api-annotation-release", "POST"): OWNER_OR_MANAGER,
    ("api:api-annotation-renew", "POST"): OWNER,
    ("api:api-annotation-warm", "POST"): OWNER,
    ("api:api-annotation-finish", "POST"): OWNER,
    ("api:api-annotation-objects", "POST"): OWNER,
    ("api:api-annotation-stats", "GET"): MEMBER,
    ("api:api-annotation-events", "POST"): AUTHENTICATED,
    ("api:api-annotation-model", "GET"): AUTHENTICATED,
    ("api:api-draft", "GET"): MEMBER,
    ("api:api-draft", "DELETE"): OWNER,
    ("api:api-draft-edits", "POST"): OWNER,
    ("api:api-draft-undo", "POST"): OWNER,
    ("api:api-draft-redo", "POST"): OWNER,
    ("api:api-draft-label", "POST"): OWNER,
    ("api:api-draft-submit", "POST"): OWNER,
    ("api:api-masklet-prompt", "POST"): OWNER,
    ("api:api-masklet-propagate", "POST"): OWNER,
    # --- API: review and fixes -----------------------------------------------------------
    ("api:api-review-queue", "GET"): MEMBER,
    ("api:api-review-next", "POST"): REVIEWER,
    ("api:api-masklet-review", "GET"): MEMBER,
    ("api:api-masklet-submit", "POST"): ANNOTATOR,
    ("api:api-masklet-verdict", "POST"): REVIEWER,
    ("api:api-fix-list", "GET"): AUTHENTICATED,
    ("api:api-fix-detail", "GET"): OWNER_OR_MANAGER,
    ("api:api-fix-resubmit", "POST"): OWNER,
    ("api:api-review-stats", "GET"): MANAGER,
    # --- API: model versions and rounds --------------------------------------------------
    ("api:api-models", "GET"): AUTHENTICATED,
    ("api:api-models", "POST"): SITE_MANAGER,
    ("api:api-model", "GET"): AUTHENTICATED,
    ("api:api-model-promote", "POST"): SITE_MANAGER,
    ("api:api-model-rollback", "POST"): SITE_MANAGER,
    ("api:api-rounds", "GET"): MEMBER,
    ("api:api-rounds", "POST"): MANAGER,
    ("api:api-round-cancel", "POST"): MANAGER,
    ("api:api-round-settings", "GET"): MEMBER,
    ("api:api-round-settings", "PATCH"): MANAGER,
    ("api:api-round", "GET"): MEMBER,
    # --- API: quality --------------------------------------------------------------------
    ("api:api-masklet-quality", "GET"): MEMBER,
    ("api:api-project-quality", "GET"): MEMBER,
    ("api:api-project-quality", "PATCH"): MANAGER,
    ("api:api-project-quality-train", "POST"): MANAGER,
    # --- pages (a plain view's other method must refuse the same personas) ---------------
    ("web:home", "GET"): AUTHENTICATED,
    ("web:login", "GET"): PUBLIC,
    ("web:login", "POST"): PUBLIC,
    ("web:login", "PUT"): PUBLIC,
    ("web:logout", "POST"): PUBLIC,
    ("web:invitation", "GET"): PUBLIC,
    ("web:invitation", "POST"): PUBLIC,
    ("web:invitation", "PUT"): PUBLIC,
    ("web:project-new", "POST"): SITE_MANAGER,
    ("web:project-detail", "GET"): MEMBER,
    ("web:project-manage", "POST"): MANAGER,
    ("web:project-phase", "POST"): MANAGER,
    ("web:video-detail", "GET"): MEMBER,
    ("web:media", "GET"): MEMBER,
    ("web:frame-thumbnail", "GET"): MEMBER,
    ("web:video-attach", "POST"): MANAGER,
    ("web:video-remove", "POST"): MANAGER,
    ("web:review-queue", "GET"): AUTHENTICATED,
    ("web:review-next", "POST"): REVIEWER,
    ("web:review-masklet", "POST"): REVIEWER,
    ("web:review-history", "GET"): MEMBER,
    ("web:review-stats", "GET"): MANAGER,
    ("web:fix-list", "GET"): AUTHENTICATED,
    ("web:fix-masklet", "POST"): OWNER_OR_MANAGER,
    ("web:annotate-queue", "GET"): AUTHENTICATED,
    ("web:annotate-next", "POST"): ANNOTATOR,
    ("web:annotate-release", "POST"): OWNER_OR_MANAGER,
    ("web:annotate-stats", "GET"): AUTHENTICATED,
    ("web:annotation-stats", "GET"): MANAGER,
    ("web:annotate-workspace", "GET"): OWNER_OR_MANAGER,
    ("web:models", "GET"): AUTHENTICATED,
    ("web:model-register", "POST"): SITE_MANAGER,
    ("web:model-rollback", "POST"): SITE_MANAGER,
    ("web:model-promote", "POST"): SITE_MANAGER,
    ("web:project-rounds", "GET"): MEMBER,
    ("web:round-start", "POST"): MANAGER,
    ("web:round-cancel", "POST"): MANAGER,
    ("web:round-settings", "POST"): MANAGER,
    ("web:round-plot", "GET"): MEMBER,
    ("web:project-quality", "GET"): MEMBER,
    ("web:project-quality-auto-accept", "POST"): MANAGER,
    ("web:project-quality-retrain", "POST"): MANAGER,
    ("web:project-team", "POST"): MANAGER,
    ("web:project-member", "POST"): MANAGER,
    ("web:console-accounts", "POST"): SITE_ADMIN,
    ("web:console-account", "POST"): SITE_ADMIN,
    ("web:console-jobs", "GET"): SITE_MANAGER,
    ("web:console-job-retry", "POST"): MANAGER,
    ("web:console-job-cancel", "POST"): MANAGER,
}

#: Where the code and the policy disagree today: (key, method, persona) -> what was found. Each
#: is reported as a finding and expected to fail (strictly: when the code is fixed, the entry must
#: go), so the table keeps the intended policy.
KNOWN_FINDINGS: Final[dict[tuple[str, str, str], str]] = {}
