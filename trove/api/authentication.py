"""Token authentication with the query built once per process.

DRF's ``TokenAuthentication`` looks the token and its user up with the ORM on every
request, and the ORM takes several times longer to build that query than SQLite or
PostgreSQL take to answer it: most of what authenticating a request costs. This class
asks the same question (the user of the token with this key) with the SQL, and the
conversions of its columns, that the ORM builds for it once, so the answer, the errors
and the models (a custom user model, a custom token model, database routers) are those
of DRF's class, read on every request as before: a deleted token or a deactivated user
is refused on the very next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

#: A key no token has, compiled into the query in place of the real one.
_PLACEHOLDER = "trove-token-key-placeholder"


@dataclass(frozen=True)
class _UserQuery:
    """The SQL of the user whose token has a given key, and how to read its row."""

    sql: str
    #: The attribute each selected column sets, in order.
    attnames: list[str]
    #: Per column position, the database converters of its field and the field's column.
    converters: dict[int, tuple[list[Any], Any]]

    def user(self, alias: str, key: str) -> Any:
        """The user of the token ``key``, or ``None``."""
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [key])
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for position, (functions, expression) in self.converters.items():
            for function in functions:
                values[position] = function(values[position], expression, connection)
        return get_user_model().from_db(alias, self.attnames, values)


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, exactly as DRF's ``TokenAuthentication``."""

    #: Per (token model, user model, database), the user query, or ``None`` where DRF's
    #: lookup is used.
    _queries: ClassVar[dict[tuple[Any, Any, str], _UserQuery | None]] = {}

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        model = self.get_model()
        alias = router.db_for_read(get_user_model())
        query = self._query(model, alias)
        if query is None:
            return super().authenticate_credentials(key)
        user = query.user(alias, key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # The token as loaded with only its key and user; other fields load on first use.
        token = model.from_db(alias, ["key", "user_id"], [key, user.pk])
        token.user = user
        return user, token

    def _query(self, model: Any, alias: str) -> _UserQuery | None:
        """The user query for tokens of ``model`` on ``alias``, built on first use; ``None``
        for a token model keyed otherwise, or a user manager that filters with parameters
        of its own."""
        cache_key = (model, get_user_model(), alias)
        if cache_key not in self._queries:
            self._queries[cache_key] = None
            if model._meta.pk.attname == "key":
                related = model._meta.get_field("user").related_query_name()
                users = get_user_model()._default_manager.using(alias)
                lookup = users.filter(**{f"{related}__key": _PLACEHOLDER})
                compiler = lookup.query.get_compiler(alias)
                sql, params = compiler.as_sql()
                if list(params) == [_PLACEHOLDER]:
                    columns = [column for column, _, _ in compiler.select]
                    self._queries[cache_key] = _UserQuery(
                        sql,
                        [column.target.attname for column in columns],
                        compiler.get_converters(columns),
                    )
        return self._queries[cache_key]
