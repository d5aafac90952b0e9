"""``POST /api/token/``: DRF's token for a username and password, with a clear 429 when the login
lockout (django-axes, in the production profile) refuses the attempt.

Axes marks the request it was handed (``request.axes_locked_out``); DRF's serializer then only
says the credentials did not work, which would hide the lockout behind a 400.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response

from api.parsers import DepthLimitedJSONParser, StrictMultiPartParser


class ObtainTokenView(ObtainAuthToken):
    # The project's parsers (DRF's own JSON parser lets deep nesting escape as a 500).
    parser_classes = [DepthLimitedJSONParser, FormParser, StrictMultiPartParser]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if getattr(request, "axes_locked_out", False):
                raise Throttled(
                    detail="Too many failed logins for this account; try again later."
                ) from None
            raise


obtain_token = ObtainTokenView.as_view()
