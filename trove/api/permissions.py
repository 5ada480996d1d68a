"""Who may read and write through the REST API.

Reading needs an authenticated user unless ``TROVE["anonymous_read"]`` is true. Writing
needs an authenticated user holding the Django permission the view names in
``write_permission`` (``trove.add_event`` for events, ``trove.add_eventschema`` for
schemas). A view whose POST only reads (``POST /api/query/``) sets ``post_reads = True``.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from trove.conf import trove_settings


class TroveAccess(BasePermission):
    """Reads follow ``anonymous_read``; writes need ``view.write_permission``."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        reads = request.method in SAFE_METHODS or (
            request.method == "POST" and getattr(view, "post_reads", False)
        )
        if reads:
            return bool(trove_settings.anonymous_read or request.user.is_authenticated)
        permission = getattr(view, "write_permission", None)
        return bool(
            permission and request.user.is_authenticated and request.user.has_perm(permission)
        )
