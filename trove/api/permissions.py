"""Who may read and write through the REST API.

Reading needs an authenticated user unless ``TROVE["anonymous_read"]`` is true. Writing
needs an authenticated user holding the Django permission the view names in
``write_permission`` (``trove.add_event`` for events, ``trove.add_eventschema`` for
schemas). A view whose POST only reads (``POST /api/query/``) sets ``post_reads = True``.

Permissions are read from the database on every request, never kept between requests, so
that one revoked in the admin applies to the very next request of every server process.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, PermissionsMixin
from django.db import connections, router
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from trove.conf import trove_settings

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


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
            permission and request.user.is_authenticated and holds(request.user, permission)
        )


def holds(user: Any, permission: str) -> bool:
    """``user.has_perm(permission)``, in one short query where Django's ``ModelBackend``
    alone answers permissions (Django's default).

    To answer one permission, ``ModelBackend`` loads every permission the user holds and
    every one of each of its groups, in two queries the ORM takes longer to build than the
    database to run: most of what a write request costs before it writes. The same answer
    (an active superuser holds every permission; an active user those given to it or to one
    of its groups; an inactive user none) comes from one query for the one permission.
    Other backends, or a user model without Django's permission fields, ask ``has_perm``.
    """
    if list(settings.AUTHENTICATION_BACKENDS) != [MODEL_BACKEND] or not isinstance(
        user, PermissionsMixin
    ):
        return bool(user.has_perm(permission))
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    app_label, _, codename = permission.partition(".")
    alias = router.db_for_read(Permission)
    connection = connections[alias]
    user_id = user._meta.pk.get_db_prep_value(user.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(_permission_query(alias), [app_label, codename, user_id, user_id])
        return cursor.fetchone() is not None


#: The SQL of :func:`holds` per (user model, database).
_queries: dict[tuple[Any, str], str] = {}


def _permission_query(alias: str) -> str:
    """The SQL of :func:`holds` on database ``alias``, built from the models' tables.

    Parameters: the permission's app label and codename, then the user's id twice.
    """
    user_model = get_user_model()
    key = (user_model, alias)
    if key not in _queries:
        quote = connections[alias].ops.quote_name
        direct = user_model._meta.get_field("user_permissions")
        membership = user_model._meta.get_field("groups")
        granted = Group._meta.get_field("permissions")

        def table(model: Any) -> str:
            return quote(model._meta.db_table)

        def column(model: Any, name: str) -> str:
            return f"{table(model)}.{quote(name)}"

        content_type_field = Permission._meta.get_field("content_type")
        content_type = content_type_field.related_model
        permission_id = column(Permission, Permission._meta.pk.column)
        _queries[key] = (
            f"SELECT 1 FROM {table(Permission)} INNER JOIN {table(content_type)} ON "
            f"{column(Permission, content_type_field.column)} = "
            f"{column(content_type, content_type._meta.pk.column)} "
            f"WHERE {column(content_type, 'app_label')} = %s "
            f"AND {column(Permission, 'codename')} = %s AND ("
            f"EXISTS (SELECT 1 FROM {table(direct.remote_field.through)} WHERE "
            f"{column(direct.remote_field.through, direct.m2m_reverse_name())} = {permission_id} "
            f"AND {column(direct.remote_field.through, direct.m2m_column_name())} = %s) "
            f"OR EXISTS (SELECT 1 FROM {table(granted.remote_field.through)} "
            f"INNER JOIN {table(membership.remote_field.through)} ON "
            f"{column(membership.remote_field.through, membership.m2m_reverse_name())} = "
            f"{column(granted.remote_field.through, granted.m2m_column_name())} WHERE "
            f"{column(granted.remote_field.through, granted.m2m_reverse_name())} = "
            f"{permission_id} "
            f"AND {column(membership.remote_field.through, membership.m2m_column_name())} = %s))"
        )
    return _queries[key]
