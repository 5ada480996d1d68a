"""Limit/offset pages of events: DRF's ``LimitOffsetPagination``, strict about its input.

DRF quietly falls back to the default page size on a bad ``limit``; a query that cannot be
read is an error everywhere else in Trove, so here it is a 400 too. ``limit=0`` is allowed
(it answers the ``count`` alone) and is never followed by a ``next`` page. ``POST
/api/query/`` takes its limit and offset from the query body instead, and answers with the
queries to post for the adjacent pages.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from trove.documents import Event
from trove.query import EventQuery

from .filters import EventSequence

#: Past this, an offset cannot be an SQL parameter on every database.
MAX_OFFSET = 2**62


class EventPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000

    def get_limit(self, request: Request) -> int:
        return self._integer(request, self.limit_query_param, self.default_limit)

    def get_offset(self, request: Request) -> int:
        return self._integer(request, self.offset_query_param, 0)

    def _integer(self, request: Request, name: str, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_OFFSET:
            raise ValidationError({name: [f"{name} must be a non-negative integer."]})
        value = int(raw)
        return min(value, self.max_limit) if name == self.limit_query_param else value

    def get_next_link(self) -> str | None:
        if self.limit == 0:
            return None
        return super().get_next_link()

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 0
        parameters[0]["description"] = (
            f"Results per page (default {self.default_limit}, at most {self.max_limit})."
        )
        parameters[1]["schema"]["maximum"] = MAX_OFFSET
        return parameters

    # POST /api/query/ -------------------------------------------------------------------

    def paginate_query(
        self, query: EventQuery, body: dict[str, Any], request: Request
    ) -> list[Event]:
        """One page of ``query``, sized by its own ``limit`` and ``offset``."""
        if query.offset > MAX_OFFSET:
            raise ValidationError({"offset": [f"offset must be at most {MAX_OFFSET}."]})
        self.request = request
        self.body = body
        self.limit = self.default_limit if query.limit is None else min(query.limit, self.max_limit)
        self.offset = query.offset
        events = EventSequence(query.without_paging())
        self.count = events.count()
        if self.count == 0 or self.offset >= self.count:
            return []
        return events[self.offset : self.offset + self.limit]

    def get_query_page_response(self, data: list[dict[str, Any]]) -> Response:
        """The page with the bodies to post for the next and previous pages."""
        following = None
        if self.limit and self.offset + self.limit < self.count:
            following = {**self.body, "limit": self.limit, "offset": self.offset + self.limit}
        preceding = None
        if self.offset > 0:
            offset = max(self.offset - self.limit, 0) if self.limit else 0
            preceding = {**self.body, "limit": self.limit, "offset": offset}
        return Response(
            {"count": self.count, "next": following, "previous": preceding, "results": data}
        )
