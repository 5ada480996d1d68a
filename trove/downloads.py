"""Serving stored files over HTTP: the one place for their headers, used by the REST API,
the admin and presigned (S3) downloads alike.

File names and content types were chosen by whoever wrote the event, so nothing of them
reaches a header unchecked, and the browser is told not to run what it receives: a file
is an attachment unless the caller asks for an inline raster image preview, ``nosniff``
keeps the declared type, and a sandboxing Content-Security-Policy disarms anything opened
directly. Content types are checked when a file is written (``trove.limits``); records
written before that rule, or by hand, are still served as ``application/octet-stream``.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from django.http import FileResponse, HttpResponseBase, HttpResponseRedirect
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header

from trove.documents import FileRecord
from trove.limits import is_media_type

#: Images a browser shows without running anything (SVG can carry scripts: not previewed).
PREVIEW_IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"}
)
#: Bytes sent per chunk while streaming a download.
STREAM_CHUNK = 256 * 1024
FALLBACK_TYPE = "application/octet-stream"

_PATH_SEPARATOR = re.compile(r"[\\/]")


def media_type(record: FileRecord) -> str:
    """The bare ``type/subtype`` of a record, lower-cased."""
    return record.content_type.split(";", 1)[0].strip().lower()


def safe_content_type(record: FileRecord) -> str:
    """The declared content type if it is a well-formed media type, else octet-stream."""
    return record.content_type if is_media_type(record.content_type) else FALLBACK_TYPE


def safe_filename(record: FileRecord) -> str:
    """A file name safe to offer a browser: no directories, no control or separator
    characters; the file id (with an extension for its type) when nothing usable is left."""
    name = _PATH_SEPARATOR.split(record.filename or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    name = name.strip(" .")
    if name:
        return name
    extension = (
        mimetypes.guess_extension(media_type(record))
        if is_media_type(record.content_type)
        else None
    )
    return f"{record.id}{extension or ''}"


def is_previewable_image(record: FileRecord) -> bool:
    return not record.is_reference and media_type(record) in PREVIEW_IMAGE_TYPES


def presigned_headers(record: FileRecord) -> dict[str, str]:
    """``Content-Type`` and ``Content-Disposition`` a presigned download answers with."""
    return {
        "type": safe_content_type(record),
        "disposition": content_disposition_header(True, safe_filename(record)),
    }


class TroveFileResponse(FileResponse):
    block_size = STREAM_CHUNK


def file_response(record: FileRecord, *, inline: bool = False) -> HttpResponseBase:
    """The bytes of a stored file, streamed; ``inline`` only takes effect for preview images.

    When ``TROVE["presigned_downloads"]`` is on and the file storage can sign a URL (S3),
    a never-cached redirect to that short-lived URL instead.
    """
    import trove
    from trove.conf import trove_settings
    from trove.storage.handler import storages

    if trove_settings.presigned_downloads:
        url = storages.files.download_url(record.id, expires=trove_settings.presigned_expiry)
        if url:
            redirect = HttpResponseRedirect(url)
            add_never_cache_headers(redirect)
            return redirect
    response = TroveFileResponse(
        trove.open_file(record.id),
        as_attachment=not (inline and is_previewable_image(record)),
        filename=safe_filename(record),
        content_type=safe_content_type(record),
    )
    if record.size is not None:
        response["Content-Length"] = str(record.size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
