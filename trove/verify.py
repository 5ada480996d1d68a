"""Checks that a store is whole (SPEC §10, ``manage.py trove_verify``).

One pass over the feed, a page at a time (memory stays flat): positions strictly
increase, each event's versions are 1..N, every link target exists, every file record of
a document is stored as the document says and its bytes exist (with ``read_files``, are
read and hashed). A backend may know more about itself than its interface shows (the
JSON directory's index and documents can disagree); it says so through
``integrity_problems``, an optional method of the event storage.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator

from trove.documents import Event, FileRecord
from trove.exceptions import NotFound
from trove.interchange import PAGE
from trove.storage.handler import StorageHandler

__all__ = ["problems"]

#: File ids already checked, remembered this many at a time (later versions of an event
#: repeat the files of earlier ones).
SEEN_FILES = 10_000


def problems(
    store: StorageHandler,
    *,
    read_files: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """Every problem found, as a sentence naming the event, version, file or position."""
    events = store.events
    checker = _FileChecker(store, read_files)
    after = 0
    while page := events.read_feed(after, PAGE):
        if page[0].position is not None and page[0].position <= after:
            yield f"Position {page[0].position} is not after position {after}."
        for previous, event in zip(page, page[1:], strict=False):
            if (event.position or 0) <= (previous.position or 0):
                yield (
                    f"Position {event.position} (event {event.uuid} v{event.version}) follows "
                    f"position {previous.position}: positions are not unique and increasing."
                )
        latest = events.get_latest({event.uuid for event in page})
        targets = events.get_latest(
            {link.target.id for event in page for link in event.links} - latest.keys()
        )
        targets.update(latest)
        for event in page:
            yield from _versions(store, event, latest.get(event.uuid))
            yield from _links(event, targets)
            yield from checker.check(event)
        if progress is not None:
            progress((page[-1].position or after) - after)
        after = page[-1].position or after
    integrity = getattr(events, "integrity_problems", None)
    if integrity is not None:
        yield from integrity()


def _versions(store: StorageHandler, event: Event, latest: Event | None) -> Iterator[str]:
    if latest is None:
        yield f"Event {event.uuid} v{event.version} is in the feed but has no latest version."
        return
    if event.version != latest.version or latest.version == 1:
        return
    numbers = [version.version for version in store.events.get_versions(event.uuid)]
    if numbers != list(range(1, latest.version + 1)):
        missing = sorted(set(range(1, latest.version + 1)) - set(numbers))
        yield (
            f"Event {event.uuid} has versions {_ranges(numbers)}, not 1..{latest.version}"
            + (f" (missing {_ranges(missing)})." if missing else ".")
        )


def _links(event: Event, targets: dict[uuid.UUID, Event]) -> Iterator[str]:
    for link in event.links:
        target = targets.get(link.target.id)
        pinned = link.target.version
        if target is None or (pinned is not None and pinned > target.version):
            which = f" version {pinned}" if pinned is not None else ""
            yield (
                f"Event {event.uuid} v{event.version}: link {link.type!r} targets event "
                f"{link.target.id}{which}, which does not exist."
            )


class _FileChecker:
    def __init__(self, store: StorageHandler, read_files: bool) -> None:
        self.files = store.files
        self.read_files = read_files
        self.seen: OrderedDict[uuid.UUID, None] = OrderedDict()

    def check(self, event: Event) -> Iterator[str]:
        for record in event.files:
            if record.id in self.seen:
                continue
            self.seen[record.id] = None
            if len(self.seen) > SEEN_FILES:
                self.seen.popitem(last=False)
            for problem in self._record(record):
                yield f"Event {event.uuid} v{event.version}: file {record.id} {problem}"

    def _record(self, record: FileRecord) -> Iterator[str]:
        stored = self.files.get_file(record.id)
        if stored is None:
            yield "has no record in the file storage."
            return
        if stored != record:
            yield "has a record in the file storage that differs from the document's."
        if record.is_reference:
            return
        if not self.read_files:
            if not record.hash or not self.files.content_exists(record.hash):
                yield f"({record.hash}): its bytes are missing."
            return
        hasher, size = hashlib.sha256(), 0
        try:
            for chunk in self.files.get_file_data(record.id):
                hasher.update(chunk)
                size += len(chunk)
        except NotFound:
            yield f"({record.hash}): its bytes are missing."
            return
        digest = f"sha256:{hasher.hexdigest()}"
        if digest != record.hash or size != record.size:
            yield (
                f"({record.hash}, {record.size} bytes): the stored bytes have hash {digest} "
                f"and {size} bytes."
            )


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` as ``1-3, 5``."""
    parts: list[str] = []
    for number in numbers:
        if parts and number == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{number}"
        else:
            parts.append(str(number))
    return ", ".join(parts)
