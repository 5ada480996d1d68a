"""One JSON error shape for every failure of the REST API, and the status code of each.

Every error answers ``{"error": {"code", "message", "problems": [{"field", "message"}]}}``,
whether it comes from Trove (the ``TroveError`` tree), from DRF (validation, parsing,
authentication, content negotiation) or from Django (``Http404``, an oversized request).
The views install :func:`exception_handler` themselves, so no project setting is needed.

Status codes: 400 malformed request or query; 401/403 not authenticated (DRF answers
401 when the first authentication class can challenge, else 403); 403 not allowed;
404 unknown event, version, file or schema; 409 version conflict; 411 a chunked body
(Django reads none without a length); 413 a file larger than ``TROVE["max_file_size"]``,
or a JSON body (or the text parts of a multipart one) larger than
``TROVE["max_request_size"]`` or than Django accepts; 422 a payload that
fails its schema (every violation listed), an unregistered schema in strict mode, or
file bytes that do not match their declared hash; 503 a storage backend (or the database)
unreachable; 507 a storage full.

Messages are for clients, so none carries what only the operator should see: a storage
failure (5xx) answers which role failed and nothing else, and an error translated from a
database's, file system's or object store's own error answers its class's plain message.
The full message, with paths, aliases and the native text, goes to the log.
"""

from __future__ import annotations

import logging
import sqlite3
from types import TracebackType
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import Error as DatabaseError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from trove.exceptions import (
    FileIntegrityError,
    FileTooLarge,
    NotFound,
    SchemaNotFound,
    SchemaValidationError,
    StorageError,
    StorageFull,
    StorageUnavailable,
    TroveError,
    VersionConflict,
)
from trove.storage.handler import storages

logger = logging.getLogger(__name__)

#: The first matching class decides; order from the most to the least specific.
TROVE_STATUS: tuple[tuple[type[TroveError], int], ...] = (
    (SchemaValidationError, status.HTTP_422_UNPROCESSABLE_ENTITY),
    (SchemaNotFound, status.HTTP_422_UNPROCESSABLE_ENTITY),
    (FileIntegrityError, status.HTTP_422_UNPROCESSABLE_ENTITY),
    (FileTooLarge, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
    (VersionConflict, status.HTTP_409_CONFLICT),
    (NotFound, status.HTTP_404_NOT_FOUND),
    (StorageFull, status.HTTP_507_INSUFFICIENT_STORAGE),
    (StorageUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
    (StorageError, status.HTTP_500_INTERNAL_SERVER_ERROR),
    (TroveError, status.HTTP_400_BAD_REQUEST),
)


class ProducerMismatch(drf.PermissionDenied):
    """``bind_producer_to_user`` is on and the request names another producer."""

    default_code = "producer_mismatch"


def error_body(code: str, message: str, problems: list[dict[str, Any]] | None = None) -> dict:
    """The error document every failing request answers with."""
    return {"error": {"code": code, "message": message, "problems": problems or []}}


def flatten_problems(detail: Any, field: str = "") -> list[dict[str, Any]]:
    """DRF's nested error details as a flat list of ``{field, message}``.

    ``{"links": [{"type": ["This field is required."]}]}`` becomes
    ``[{"field": "links[0].type", "message": "This field is required."}]``.
    """
    if isinstance(detail, dict):
        problems = []
        for key, value in detail.items():
            name = "" if key in (api_settings.NON_FIELD_ERRORS_KEY, NON_FIELD_ERRORS) else str(key)
            problems += flatten_problems(
                value, f"{field}.{name}" if field and name else field or name
            )
        return problems
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [{"field": field, "message": str(item)} for item in detail]
        problems = []
        for index, item in enumerate(detail):
            problems += flatten_problems(item, f"{field}[{index}]")
        return problems
    return [{"field": field, "message": str(detail)}]


def failing_role(traceback: TracebackType | None) -> str | None:
    """The storage role (``events``, ``files``, ``links``) whose method the error left
    from, found as the innermost frame of the traceback running on a configured storage."""
    roles = {}
    for role in ("links", "files", "events"):  # events last: it names a shared instance
        try:
            roles[id(storages[role])] = role
        except Exception:  # a role that cannot even be built did not raise this error
            continue
    found = None
    while traceback is not None:
        owner = traceback.tb_frame.f_locals.get("self")
        if owner is not None and id(owner) in roles:
            found = roles[id(owner)]
        traceback = traceback.tb_next
    return found


def _is_native(error: BaseException | None) -> bool:
    """Whether ``error`` is a storage's own (database, file system, object store) error."""
    if error is None or isinstance(error, TroveError):
        return False
    if isinstance(error, DatabaseError | sqlite3.Error | OSError):
        return True
    return type(error).__module__.split(".")[0] in ("botocore", "boto3", "psycopg", "psycopg2")


def _from_trove(exc: TroveError, code: int) -> dict:
    """The error body of a Trove error, without what only the operator should read."""
    if code >= 500:
        role = failing_role(exc.__traceback__)
        storage = f"The {role} storage" if role else "A storage backend"
        if isinstance(exc, StorageFull):
            message = f"{storage} is full; nothing was written. Try again once space is freed."
        elif isinstance(exc, StorageUnavailable):
            message = f"{storage} is unavailable; try again later."
        else:
            message = f"{storage} failed; the server log has the details."
        logger.error("Storage failure: %s", exc.message, exc_info=exc)
        return error_body(exc.code, message)
    if _is_native(exc.__cause__):
        logger.warning("Storage refused a request: %s", exc.message, exc_info=exc)
        return error_body(exc.code, "A storage refused a value of this request.")
    return error_body(exc.code, exc.message, exc.problems)


def _from_drf(exc: drf.APIException) -> tuple[int, dict, dict[str, str]]:
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = f"{exc.wait:d}"
    if isinstance(exc.detail, dict | list):
        problems = flatten_problems(exc.detail)
        message = "Invalid request: " + "; ".join(
            f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems
        )
        code = "invalid_request" if isinstance(exc, drf.ValidationError) else exc.default_code
        return exc.status_code, error_body(code, message, problems), headers
    code = getattr(exc.detail, "code", None) or exc.default_code
    return exc.status_code, error_body(code, str(exc.detail)), headers


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler answering every known failure with :func:`error_body`.

    Anything else returns ``None``, so DRF re-raises it and Django reports a server error.
    """
    headers: dict[str, str] = {}
    if isinstance(exc, TroveError):
        code = next(code for cls, code in TROVE_STATUS if isinstance(exc, cls))
        body = _from_trove(exc, code)
    elif isinstance(exc, OperationalError | InterfaceError):  # the database, outside a storage
        logger.error("Database failure: %s", exc, exc_info=exc)
        code = status.HTTP_503_SERVICE_UNAVAILABLE
        body = error_body(StorageUnavailable.code, "The database is unavailable; try again later.")
    elif isinstance(exc, Http404):
        code, body = 404, error_body("not_found", str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        code, body = 403, error_body("permission_denied", str(exc) or "Permission denied.")
    elif isinstance(exc, RequestDataTooBig):
        code, body = 413, error_body("request_too_large", str(exc))
    elif isinstance(exc, SuspiciousOperation):
        code, body = 400, error_body("malformed_request", str(exc))
    elif isinstance(exc, drf.APIException):
        code, body, headers = _from_drf(exc)
    else:
        return None
    set_rollback()
    return Response(body, status=code, headers=headers)
