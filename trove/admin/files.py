"""Serving attached files to staff: downloads, image previews, and text previews.

File names and content types were chosen by whoever wrote the event, so nothing of them
reaches a header unchecked, and the browser is told not to run what it receives: a file
is an attachment unless it is a raster image shown as a preview, ``nosniff`` keeps the
declared type, and a sandboxing Content-Security-Policy disarms anything opened directly.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from django.http import FileResponse

import trove
from trove.documents import FileRecord

#: Images a browser shows without running anything (SVG can carry scripts: not previewed).
PREVIEW_IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"}
)
TEXT_TYPES = frozenset(
    {"application/json", "application/xml", "application/x-ndjson", "application/yaml"}
)
#: Bytes of a text file shown on the event page.
TEXT_PREVIEW_BYTES = 16 * 1024
#: Bytes sent per chunk while streaming a download.
STREAM_CHUNK = 256 * 1024

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CONTENT_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\]*\"))*$")


def media_type(record: FileRecord) -> str:
    """The bare ``type/subtype`` of a record, lower-cased."""
    return record.content_type.split(";", 1)[0].strip().lower()


def safe_content_type(record: FileRecord) -> str:
    """The declared content type if it is well-formed, else ``application/octet-stream``."""
    value = record.content_type.strip()
    return value if _CONTENT_TYPE.match(value) else "application/octet-stream"


def safe_filename(record: FileRecord) -> str:
    """A file name fit for Content-Disposition: no directories, no control characters."""
    name = record.filename or ""
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    if not name:
        extension = mimetypes.guess_extension(media_type(record)) or ""
        name = f"{record.id}{extension}"
    return name


def is_previewable_image(record: FileRecord) -> bool:
    return not record.is_reference and media_type(record) in PREVIEW_IMAGE_TYPES


def is_text(record: FileRecord) -> bool:
    kind = media_type(record)
    return (
        kind.startswith("text/") or kind in TEXT_TYPES or kind.endswith(("+json", "+xml"))
    ) and not record.is_reference


class TroveFileResponse(FileResponse):
    block_size = STREAM_CHUNK


def file_response(record: FileRecord, *, inline: bool) -> FileResponse:
    """Stream a stored file's bytes; ``inline`` only takes effect for preview images."""
    as_attachment = not (inline and is_previewable_image(record))
    response = TroveFileResponse(
        trove.open_file(record.id),
        as_attachment=as_attachment,
        filename=safe_filename(record),
        content_type=safe_content_type(record),
    )
    if "Content-Length" not in response and record.size is not None:
        response["Content-Length"] = str(record.size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@dataclass(frozen=True)
class TextPreview:
    """The beginning of a text file, decoded; ``truncated`` when there is more."""

    text: str
    truncated: bool


def text_preview(record: FileRecord) -> TextPreview | None:
    """The first :data:`TEXT_PREVIEW_BYTES` of a text file, or ``None`` if not text."""
    if not is_text(record):
        return None
    with trove.open_file(record.id) as stream:
        head = stream.read(TEXT_PREVIEW_BYTES + 1)
    charset = "utf-8"
    match = re.search(r"charset=\"?([\w.:-]+)", record.content_type, re.IGNORECASE)
    if match:
        charset = match[1]
    try:
        text = head[:TEXT_PREVIEW_BYTES].decode(charset, errors="replace")
    except LookupError:
        text = head[:TEXT_PREVIEW_BYTES].decode("utf-8", errors="replace")
    return TextPreview(text, len(head) > TEXT_PREVIEW_BYTES)
