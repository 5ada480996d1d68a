"""A rejected event leaves no new object in the file store, and bytes others hold survive.

:class:`LeavesNothingBehind` lists the store before and after a write that fails at a
different point each time. It runs on the file system here and on S3 in ``test_s3``;
events live in the ORM so that a database error is a real one.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import trove
from trove import signals
from trove.exceptions import (
    FileIntegrityError,
    FileTooLarge,
    SchemaValidationError,
    VersionConflict,
)
from trove.storage.handler import storages
from trove.testing.conformance import BackendFixture

SHARED = b"bytes that an earlier event already holds"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def refuse(**kwargs):
    raise RuntimeError("receiver refused")


MiB = 1024 * 1024


class DroppedUpload:
    """A client that sends ``mebibytes`` of distinct bytes, then drops the connection."""

    def __init__(self, mebibytes: int) -> None:
        self.left = mebibytes

    def read(self, size: int = -1) -> bytes:
        if not self.left:
            raise ConnectionResetError("the client went away")
        self.left -= 1
        return os.urandom(MiB)


class LeavesNothingBehind(BackendFixture):
    """Subclasses configure the store (``trove_storage``) and list it (``stored_names``)."""

    def stored_names(self) -> set[str]:
        raise NotImplementedError("Every object (file or key) the file store holds.")

    @pytest.fixture(autouse=True)
    def _spool_directory(self, settings, tmp_path):
        """Spools that do not live in the store (S3's) go where the tests can see them."""
        self.spool_directory = tmp_path / "spools"
        self.spool_directory.mkdir()
        settings.FILE_UPLOAD_TEMP_DIR = str(self.spool_directory)

    @pytest.fixture
    def earlier(self):
        """An event holding :data:`SHARED`, and what the store holds once it is written."""
        event = trove.create_event("doc", {}, files=[trove.NewFile(SHARED, "text/plain", "a.txt")])
        return event, self.stored_names()

    def files_of_a_failing_write(self, name: str) -> tuple[bytes, list[trove.NewFile]]:
        """Bytes already held plus new bytes, so both cleanup rules are exercised."""
        fresh = f"new bytes of the {name} write".encode()
        return fresh, [
            trove.NewFile(SHARED, "text/plain", "again.txt"),
            trove.NewFile(fresh, "text/plain", "new.txt"),
        ]

    def assert_nothing_new(self, earlier, fresh: bytes | None) -> None:
        event, before = earlier
        assert self.stored_names() == before
        assert list(self.spool_directory.iterdir()) == []
        if fresh is not None:
            assert not storages.files.content_exists(digest(fresh))
        with trove.open_file(event.files[0].id) as stream:
            assert stream.read() == SHARED
        assert [e.uuid for e in trove.query_events({})] == [event.uuid]

    def test_schema_violation(self, earlier):
        trove.register_schema("doc.titled", "1", {"type": "object", "required": ["title"]})
        fresh, files = self.files_of_a_failing_write("invalid")
        with pytest.raises(SchemaValidationError):
            trove.create_event("doc.titled", {}, files=files)
        self.assert_nothing_new(earlier, fresh)

    def test_receiver_raising_while_storing(self, earlier):
        fresh, files = self.files_of_a_failing_write("refused")
        signals.event_storing.connect(refuse)
        try:
            with pytest.raises(RuntimeError, match="receiver refused"):
                trove.create_event("doc", {}, files=files)
        finally:
            signals.event_storing.disconnect(refuse)
        self.assert_nothing_new(earlier, fresh)

    def test_version_conflict_from_the_database(self, earlier):
        """Another writer stores the same client-chosen id after Trove checked it was free."""

        def other_writer(sender, event, **kwargs):
            storages.events.save_event(event.with_changes(files=(), payload={"by": "other"}))

        fresh, files = self.files_of_a_failing_write("conflicting")
        signals.event_storing.connect(other_writer)
        try:
            with pytest.raises(VersionConflict):
                trove.create_event("doc", {}, files=files, event_id=uuid.uuid4())
        finally:
            signals.event_storing.disconnect(other_writer)
        self.assert_nothing_new(earlier, fresh)

    def test_rolled_back_transaction(self, earlier):
        fresh, files = self.files_of_a_failing_write("rolled back")
        with pytest.raises(RuntimeError, match="changed its mind"):
            with trove.transaction():
                trove.create_event("doc", {}, files=files)
                trove.create_event("doc", {"second": True}, files=[trove.NewFile(fresh)])
                raise RuntimeError("the caller changed its mind")
        self.assert_nothing_new(earlier, fresh)

    def test_later_file_with_a_wrong_hash(self, earlier):
        fresh, files = self.files_of_a_failing_write("mismatched")
        bad = trove.NewFile(b"tampered", hash=digest(b"original"))
        with pytest.raises(FileIntegrityError):
            trove.create_event("doc", {}, files=[*files, bad])
        self.assert_nothing_new(earlier, fresh)

    def test_later_file_over_the_size_limit(self, earlier, settings):
        settings.TROVE = {**settings.TROVE, "max_file_size": 100}
        fresh, files = self.files_of_a_failing_write("oversized")
        with pytest.raises(FileTooLarge, match="limit of 100 bytes"):
            trove.create_event("doc", {}, files=[*files, trove.NewFile(b"x" * 101, filename="big")])
        self.assert_nothing_new(earlier, fresh)

    def test_a_client_dropping_half_way_through_a_large_upload(self, earlier):
        files = [trove.NewFile(SHARED, "text/plain", "again.txt"), trove.NewFile(DroppedUpload(9))]
        with pytest.raises(ConnectionResetError):
            trove.create_event("doc", {}, files=files)
        self.assert_nothing_new(earlier, None)

    def test_a_large_file_with_a_wrong_hash(self, earlier):
        data = os.urandom(9 * MiB + 5)
        with pytest.raises(FileIntegrityError, match=digest(data)):
            trove.create_event("doc", {}, files=[trove.NewFile(data, hash=digest(b"other"))])
        self.assert_nothing_new(earlier, data)

    def test_a_large_file_over_the_size_limit(self, earlier, settings):
        settings.TROVE = {**settings.TROVE, "max_file_size": 5 * MiB}
        with pytest.raises(FileTooLarge):
            trove.create_event("doc", {}, files=[trove.NewFile(DroppedUpload(9))])
        self.assert_nothing_new(earlier, None)

    def test_concurrent_writes_of_the_same_new_bytes(self):
        """Writers racing with the same new bytes all keep them; undoing every write, also
        at once, leaves nothing."""
        files = storages.files
        before = self.stored_names()
        data = os.urandom(3 * MiB + 1)
        start = threading.Barrier(4)

        def save(_):
            start.wait()
            return files.save_file(io.BytesIO(data), content_type="x/y").record

        def undo(record):
            start.wait()
            files.delete_file(record.id, delete_content=True)

        with ThreadPoolExecutor(4) as pool:
            records = list(pool.map(save, range(4)))
        assert {record.hash for record in records} == {digest(data)}
        for record in records:
            with files.open_file(record.id) as stream:
                assert stream.read() == data
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(undo, records))
        assert not files.content_exists(digest(data))
        assert self.stored_names() == before
        assert list(self.spool_directory.iterdir()) == []

    def test_undoing_one_write_keeps_bytes_a_concurrent_write_holds(self):
        """Two overlapping writes of the same new bytes both found them absent; the one
        that fails must not delete what the other has just committed."""
        files = storages.files
        before = self.stored_names()
        data = b"uploaded twice at the same time"
        failing = files.save_file(io.BytesIO(data), content_type="text/plain")
        committed = files.save_file(io.BytesIO(data), content_type="text/plain")
        files.delete_file(failing.record.id, delete_content=True)
        with files.open_file(committed.record.id) as stream:
            assert stream.read() == data
        files.delete_file(committed.record.id, delete_content=True)
        assert not files.content_exists(digest(data))
        assert self.stored_names() == before


class TestFileSystemLeavesNothingBehind(LeavesNothingBehind):
    def trove_storage(self, tmp_path):
        self.directory = tmp_path / "files"
        return {
            "events": {"plugin": "storage-orm"},
            "files": {
                "plugin": "storage-file-system",
                "options": {"directory": str(self.directory)},
            },
        }

    def stored_names(self) -> set[str]:
        return {
            str(path.relative_to(self.directory))
            for path in self.directory.rglob("*")
            if not path.is_dir()
        }
