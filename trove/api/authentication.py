"""Token authentication with the query built once per process.

DRF's ``TokenAuthentication`` looks the token and its user up with the ORM on every
request, and the ORM takes several times longer to build that query than SQLite or
PostgreSQL take to answer it: most of what authenticating a request costs. This class
asks the same question (the user of the token with this key) with the SQL the ORM builds
for it once, so the answer, the errors and the models (a custom user model, a custom
token model, database routers) are those of DRF's class, read on every request as before:
a deleted token or a deactivated user is refused on the very next request.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.db import router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

#: A key no token has, compiled into the query in place of the real one.
_PLACEHOLDER = "trove-token-key-placeholder"


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, exactly as DRF's ``TokenAuthentication``."""

    #: The SQL per (token model, database), or ``None`` where DRF's own lookup is used.
    _queries: ClassVar[dict[tuple[Any, str], str | None]] = {}

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        model = self.get_model()
        users = get_user_model()._default_manager
        alias = router.db_for_read(users.model)
        sql = self._query(model, users, alias)
        if sql is None:
            return super().authenticate_credentials(key)
        found = list(users.raw(sql, [key], using=alias))
        if not found:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = found[0]
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # The token as loaded with only its key and user; other fields load on first use.
        token = model.from_db(alias, ["key", "user_id"], [key, user.pk])
        token.user = user
        return user, token

    def _query(self, model: Any, users: Any, alias: str) -> str | None:
        """The SQL of the user whose token has a given key (its one parameter), built on
        first use; ``None`` for a token model keyed otherwise, or a user manager that
        filters with parameters of its own."""
        cache_key = (model, alias)
        if cache_key not in self._queries:
            sql: str | None = None
            if model._meta.pk.attname == "key":
                related = model._meta.get_field("user").related_query_name()
                lookup = users.using(alias).filter(**{f"{related}__key": _PLACEHOLDER})
                sql, params = lookup.query.sql_with_params()
                if list(params) != [_PLACEHOLDER]:
                    sql = None
            self._queries[cache_key] = sql
        return self._queries[cache_key]
