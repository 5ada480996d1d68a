"""Attached files for staff: downloads and image previews (served by ``trove.downloads``,
as the REST API serves them), and text previews on the event page."""

from __future__ import annotations

import re
from dataclasses import dataclass

import trove
from trove.documents import FileRecord
from trove.downloads import media_type

TEXT_TYPES = frozenset(
    {"application/json", "application/xml", "application/x-ndjson", "application/yaml"}
)
#: Bytes of a text file shown on the event page.
TEXT_PREVIEW_BYTES = 16 * 1024


def is_text(record: FileRecord) -> bool:
    kind = media_type(record)
    return (
        kind.startswith("text/") or kind in TEXT_TYPES or kind.endswith(("+json", "+xml"))
    ) and not record.is_reference


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
