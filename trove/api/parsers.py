"""Request bodies read within Trove's limits: JSON, and multipart read into the same document.

JSON bodies are read up to ``TROVE["max_request_size"]`` bytes (413 beyond it, told by
``Content-Length`` before a byte is read, and counted while reading whatever the header
says) and decoded by :func:`loads`, which answers a body nested past what Python's decoder
can follow with a 400 rather than a ``RecursionError``. DRF's ``JSONParser`` reads the
stream itself, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` never applies to it.

The original Trove clients post ``multipart/form-data``: ``payload``, ``metadata`` and
``links`` as JSON text, ``schema`` as JSON text (an object) or a plain id, ``producer`` as
plain text, and every uploaded part is a file. :class:`EventMultiPartParser` decodes the
JSON parts so that one serializer validates both forms; the uploaded parts stay where
Django put them (in memory when small, else in a temporary file) and are streamed to the
file storage. Text parts count towards ``max_request_size`` as they arrive; uploaded parts
never do (``max_file_size`` limits each file). An empty part counts as not given: HTML
forms (the browsable API's among them) send every field, filled or not.

Django skips an uploaded part whose headers are not UTF-8, or whose file name it cleans
down to nothing (``..``), and the event would be stored without the file. Here such a part
keeps its bytes under a safe file name instead (undecodable bytes become U+FFFD).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.http import parse_header_parameters
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import DataAndFiles, JSONParser, MultiPartParser

from trove.conf import trove_settings
from trove.jsonvalues import json_depth

#: Levels a request body wraps around the values whose nesting ``max_json_depth`` limits
#: (a batch list, an event, its links list, a link around the link's metadata). Each value
#: is measured on its own later; this bound only spares the work on bodies deeper still.
ENVELOPE_DEPTH = 4
#: The name given to an uploaded part whose file name is unusable.
REPLACEMENT_FILENAME = "upload"


class RequestTooLarge(exceptions.APIException):
    """A JSON body, or the text parts of a multipart body, beyond ``max_request_size``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request body is larger than {limit} bytes (TROVE['max_request_size']); "
            "send files as uploaded parts of a multipart body."
        )


class LengthRequired(exceptions.APIException):
    """A chunked body: Django's WSGI request reads no body without a ``Content-Length``, so
    the body would silently count as empty."""

    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"
    default_detail = "Send the request body with a Content-Length; chunked bodies are not read."


def refuse_unsized_body(request) -> None:
    """Raise :class:`LengthRequired` for a chunked body, rather than read it as empty."""
    meta = request.META
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not meta.get("CONTENT_LENGTH"):
        raise LengthRequired()


#: Parts a browser's form adds that are not part of the event: Django's CSRF token (which
#: the CSRF check reads from the parsed body, so the parser keeps it), and the fields of
#: DRF's raw-content form.
FORM_ONLY_FIELDS = frozenset({"csrfmiddlewaretoken", "_content_type", "_content"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def loads(text: str, what: str = "The request body", envelope: int = ENVELOPE_DEPTH) -> Any:
    """Decode JSON text; 400 if it is not JSON or nests deeper than ``max_json_depth`` plus
    the ``envelope`` levels around the values that limit applies to."""
    limit = trove_settings.max_json_depth + envelope
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ParseError(f"{what} is nested deeper than {limit} levels.") from None
    except ValueError as error:
        raise ParseError(f"{what} is not valid JSON text: {error}.") from None
    if json_depth(value) > limit:
        raise ParseError(f"{what} is nested deeper than {limit} levels.")
    return value


def declared_length(parser_context: dict[str, Any] | None) -> int:
    meta = (parser_context or {})["request"].META
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class TroveJSONParser(JSONParser):
    """DRF's ``JSONParser`` within ``max_request_size`` and ``max_json_depth``."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = trove_settings.max_request_size
        if limit is not None and declared_length(parser_context) > limit:
            raise RequestTooLarge(limit)
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise RequestTooLarge(limit)
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = body.decode(encoding)
        except LookupError:
            raise exceptions.UnsupportedMediaType(media_type) from None
        except UnicodeDecodeError as error:
            raise ParseError(f"The request body is not valid {encoding} text: {error}.") from None
        return loads(text)


# Multipart ---------------------------------------------------------------------------

_FILENAME_STAR = re.compile(rb"filename\*\s*=\s*[^;]*", re.IGNORECASE)
#: The longest block of part headers looked at, as Django's own parser allows.
_MAX_HEADERS = 64 * 1024


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _repaired_header(line: bytes) -> tuple[bytes, bool]:
    """A part header Django will read, and whether it names a file.

    Undecodable bytes become U+FFFD, and a ``filename*`` in an unknown charset becomes a
    plain ``filename``: Django would skip either header, and with it the file.
    """
    text = line.decode("utf-8", "replace")
    changed = text.encode() != line
    try:
        key, params = parse_header_parameters(text)
    except ValueError:
        text = _FILENAME_STAR.sub(b'filename="upload"', text.encode()).decode()
        changed = True
        try:
            key, params = parse_header_parameters(text)
        except ValueError:
            return text.encode(), False
    if not key.startswith("content-disposition:"):
        return text.encode(), False
    if changed:
        parts = [text.split(";", 1)[0]]
        parts += [f"{name}={_quoted(value)}" for name, value in params.items()]
        text = "; ".join(parts)
    return text.encode(), bool(params.get("filename"))


class GuardedMultipartStream:
    """A multipart body as Django's parser reads it, with part headers repaired (see
    :func:`_repaired_header`) and the bytes of text parts counted against ``limit``."""

    def __init__(self, stream, boundary: bytes, limit: int | None) -> None:
        self._stream = stream
        self._delimiter = b"--" + boundary
        self._limit = limit
        self._input = b""
        self._output = b""
        self._eof = False
        self._in_text_part = False
        self._text_bytes = 0

    def _fill(self, size: int) -> None:
        while not self._eof and len(self._input) < size:
            chunk = self._stream.read(max(size - len(self._input), 64 * 1024))
            if not chunk:
                self._eof = True
            self._input += chunk

    def _emit_content(self, size: int) -> None:
        if self._in_text_part and self._limit is not None:
            self._text_bytes += size
            if self._text_bytes > self._limit:
                raise RequestTooLarge(self._limit)
        self._output += self._input[:size]
        self._input = self._input[size:]

    def _advance(self) -> None:
        self._fill(64 * 1024 + len(self._delimiter))
        at = self._input.find(self._delimiter)
        if at < 0:
            keep = 0 if self._eof else len(self._delimiter)
            self._emit_content(max(len(self._input) - keep, 0))
            return
        self._emit_content(at)
        self._output += self._delimiter
        self._input = self._input[len(self._delimiter) :]
        self._fill(_MAX_HEADERS)
        end = self._input.find(b"\r\n\r\n")
        self._in_text_part = False
        if not self._input.startswith(b"\r\n") or end < 2:  # the last, or one without headers
            return
        lines = self._input[2:end].split(b"\r\n")
        repaired = [_repaired_header(line) for line in lines]
        self._in_text_part = not any(is_file for _, is_file in repaired)
        self._output += b"\r\n" + b"\r\n".join(line for line, _ in repaired) + b"\r\n\r\n"
        self._input = self._input[end + 4 :]

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._output) < size) and not (self._eof and not self._input):
            self._advance()
        if size < 0:
            size = len(self._output)
        data, self._output = self._output[:size], self._output[size:]
        return data


class UploadParser(DjangoMultiPartParser):
    """Django's multipart parser, keeping a part whose file name cleans down to nothing."""

    def sanitize_file_name(self, file_name: str) -> str:
        return DjangoMultiPartParser.sanitize_file_name(self, file_name) or REPLACEMENT_FILENAME


class EventMultiPartParser(MultiPartParser):
    """``multipart/form-data`` whose text parts become a JSON-like event document."""

    #: Parts always holding JSON text.
    json_fields: ClassVar[frozenset[str]] = frozenset({"payload", "metadata", "links", "files"})

    def parse(self, stream, media_type=None, parser_context=None) -> DataAndFiles:
        parsed = self._parts(stream, media_type, parser_context or {})
        document: dict[str, Any] = {}
        problems: dict[str, list[str]] = {}
        for name in parsed.data:
            values = parsed.data.getlist(name)
            if len(values) > 1:
                problems[name] = [f"{name!r} was given {len(values)} times; give it once."]
                continue
            if values[0] == "":
                continue
            try:
                document[name] = self.decode(name, values[0])
            except ParseError as error:
                problems[name] = [str(error.detail)]
        if problems:
            raise ValidationError(problems)
        return DataAndFiles(document, parsed.files)

    @staticmethod
    def _parts(stream, media_type, parser_context: dict[str, Any]) -> DataAndFiles:
        """DRF's multipart parsing, through :class:`UploadParser` and the guarded stream."""
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            boundary = parse_header_parameters(media_type or "")[1].get("boundary") or ""
        except ValueError as error:
            raise ParseError(f"Multipart form parse error - {error}") from None
        guarded = GuardedMultipartStream(
            stream, boundary.encode("ascii", "replace"), trove_settings.max_request_size
        )
        try:
            parser = UploadParser(meta, guarded, request.upload_handlers, encoding)
            data, files = parser.parse()
        except MultiPartParserError as error:
            raise ParseError(f"Multipart form parse error - {error}") from None
        return DataAndFiles(data, files)

    def decode(self, name: str, text: str) -> Any:
        """A part's value: JSON for :attr:`json_fields` and for a ``schema`` object, else text."""
        if name in self.json_fields or (name == "schema" and text.lstrip().startswith("{")):
            return loads(text, f"{name!r}", envelope=2)
        return text
