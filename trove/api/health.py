"""``GET /api/health/``: whether each storage role answers, for load balancers and probes.

It answers without authentication, so it says no more than ``"ok"`` or ``"unavailable"``
per role; why a storage failed goes to the server log only.
"""

from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from trove.storage.handler import storages

from .views import TroveAPIMixin

logger = logging.getLogger(__name__)

ROLES = ("events", "files", "links")

_STATE = serializers.ChoiceField(choices=["ok", "unavailable"])
_HEALTH = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "unavailable"]),
        "storages": inline_serializer("StorageHealth", {role: _STATE for role in ROLES}),
    },
)


def role_state(role: str) -> str:
    """``"ok"`` when the storage of ``role`` can be built and answers its probe."""
    try:
        storages[role].check()
    except Exception:
        logger.warning("Health check: the %s storage is unavailable.", role, exc_info=True)
        return "unavailable"
    return "ok"


class HealthView(TroveAPIMixin):
    """Each storage role probed with its cheap ``check()``; 503 if any fails."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    view_description = "Whether each storage answers: `ok`, or `unavailable` (then 503)."

    @extend_schema(
        summary="Whether the storages answer",
        description="Answers without authentication: 200 when every storage answers, 503 "
        "with the failing ones marked `unavailable`. Nothing else is revealed.",
        auth=[],
        responses={
            200: OpenApiResponse(_HEALTH, description="Every storage answers."),
            503: OpenApiResponse(_HEALTH, description="At least one storage does not."),
        },
    )
    def get(self, request: Request) -> Response:
        states = {role: role_state(role) for role in ROLES}
        healthy = all(state == "ok" for state in states.values())
        return Response(
            {"status": "ok" if healthy else "unavailable", "storages": states},
            status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Cache-Control": "no-store"},
        )
