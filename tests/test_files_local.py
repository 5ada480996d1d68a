"""Files on the local file system: what a crash or a failed upload leaves, where files go
by default, and any Django storage by dotted path."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trove.exceptions import FileTooLarge, StorageUnavailable
from trove.storage import spool
from trove.storage.files import FileSystemFileStorage
from trove.storage.handler import storages
from trove.testing.conformance import BackendFixture, FileStorageConformance

#: A process that stores a file from a client that sends 40 MiB, then stalls.
STALLED_UPLOAD = textwrap.dedent(
    """
    import os, sys, time
    import django
    from django.conf import settings

    settings.configure(INSTALLED_APPS=["trove"], USE_TZ=True)
    django.setup()
    from trove.storage.files import FileSystemFileStorage

    class Stalls:
        sent = 0

        def read(self, size=-1):
            if self.sent == 40:
                time.sleep(120)
            self.sent += 1
            return os.urandom(1024 * 1024)

    FileSystemFileStorage(directory=sys.argv[1]).save_file(Stalls(), content_type="x/y")
    """
)


def files_under(directory: Path) -> dict[str, int]:
    """Every file under ``directory`` by relative name, with its size."""
    return {
        path.relative_to(directory).as_posix(): path.stat().st_size
        for path in directory.rglob("*")
        if path.is_file()
    }


def test_a_process_killed_mid_upload_leaves_only_a_spool_which_is_later_removed(tmp_path):
    directory = tmp_path / "files"
    child = subprocess.Popen(
        [sys.executable, "-c", STALLED_UPLOAD, str(directory)], cwd=Path(__file__).parent.parent
    )
    try:
        deadline = time.monotonic() + 60
        while sum(files_under(directory).values()) < 40 * 1024 * 1024:
            assert child.poll() is None and time.monotonic() < deadline, "upload never got going"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    [(spool, size)] = files_under(directory).items()
    assert spool.startswith("incoming/") and size == 40 * 1024 * 1024

    day_old = time.time() - 2 * 24 * 3600
    os.utime(directory / spool, (day_old, day_old))
    files = FileSystemFileStorage(directory=str(directory))
    record = files.save_file(io.BytesIO(b"after"), content_type="text/plain").record
    hexdigest = record.hash.removeprefix("sha256:")
    assert set(files_under(directory)) == {
        f"blobs/sha256/{hexdigest[:2]}/{hexdigest}",
        f"records/{record.id.hex[:2]}/{record.id}.json",
        f"refs/sha256/{hexdigest[:2]}/{hexdigest}/{record.id}",
    }


class TestFileSystemStorage(BackendFixture):
    def trove_storage(self, tmp_path):
        self.directory = tmp_path / "files"
        return {
            "events": {"plugin": "storage-memory"},
            "files": {
                "plugin": "storage-file-system",
                "options": {"directory": str(self.directory)},
            },
        }

    def spooled(self) -> list[str]:
        incoming = self.directory / "incoming"
        return sorted(p.name for p in incoming.iterdir()) if incoming.exists() else []

    def test_a_blob_cut_short_by_a_crash_is_rewritten(self):
        data = b"complete content " * 1000
        first = storages.files.save_file(io.BytesIO(data), content_type="text/plain").record
        hexdigest = hashlib.sha256(data).hexdigest()
        blob = self.directory / "blobs" / "sha256" / hexdigest[:2] / hexdigest
        blob.write_bytes(data[:100])
        again = storages.files.save_file(io.BytesIO(data), content_type="text/plain")
        assert again.new_content
        with storages.files.open_file(first.id) as stream:
            assert stream.read() == data

    def test_bytes_the_disk_failed_to_write_never_become_visible(self, monkeypatch):
        """The fsync before the rename reports a failed write-back: the blob was never
        named (so a crash then could not have left it either), the marker is undone and the
        spool removed."""
        real_fsync, named_while_syncing = os.fsync, []

        def failing_fsync(descriptor):
            if os.fstat(descriptor).st_size >= 2 * 1024 * 1024:
                named_while_syncing.extend(files_under(self.directory))
                raise OSError(errno.EIO, "Input/output error")
            real_fsync(descriptor)

        monkeypatch.setattr(os, "fsync", failing_fsync)
        data = os.urandom(3 * 1024 * 1024)
        with pytest.raises(StorageUnavailable, match="Input/output error"):
            storages.files.save_file(io.BytesIO(data), content_type="x/y")
        assert not [name for name in named_while_syncing if name.startswith("blobs/")]
        assert files_under(self.directory) == {}
        monkeypatch.setattr(os, "fsync", real_fsync)
        stored = storages.files.save_file(io.BytesIO(data), content_type="x/y")
        assert stored.new_content

    def test_a_write_back_failure_reported_to_the_background_flush_is_not_lost(self, monkeypatch):
        """The kernel reports a failed write-back once, to whichever flush asks first: when
        that is the flush a large spool starts while bytes still arrive, the upload fails
        and nothing becomes visible, although the final fsync then finds nothing wrong."""
        failures: list[int] = []

        def flush_failing_once(descriptor: int) -> None:
            if not failures:
                failures.append(descriptor)
                raise OSError(errno.EIO, "Input/output error")
            os.fsync(descriptor)

        monkeypatch.setattr(spool, "_FLUSH", flush_failing_once)
        monkeypatch.setattr(spool.SpooledUpload, "write_behind_every", 1024 * 1024)
        data = os.urandom(6 * 1024 * 1024)
        with pytest.raises(StorageUnavailable, match="Input/output error"):
            storages.files.save_file(io.BytesIO(data), content_type="x/y")
        assert failures and files_under(self.directory) == {}
        stored = storages.files.save_file(io.BytesIO(data), content_type="x/y")
        assert stored.new_content

    def test_a_new_name_is_made_durable_with_every_directory_made_for_it(self, monkeypatch):
        """Once the name is there, the directory holding it is fsynced, and so is the parent
        of each directory made for it: otherwise a power cut could take an acknowledged
        file's name (or its directory) away."""
        real_fsync, synced_once_named = os.fsync, set()
        data = b"the first file: every directory is made for it"
        hexdigest = hashlib.sha256(data).hexdigest()
        blob = self.directory / "blobs" / "sha256" / hexdigest[:2] / hexdigest

        def recording_fsync(descriptor: int) -> None:
            if blob.exists():
                stat = os.fstat(descriptor)
                synced_once_named.add((stat.st_dev, stat.st_ino))
            real_fsync(descriptor)

        monkeypatch.setattr(os, "fsync", recording_fsync)
        storages.files.save_file(io.BytesIO(data), content_type="x/y")
        for directory in (blob.parent, blob.parent.parent, blob.parent.parent.parent):
            stat = directory.stat()
            assert (stat.st_dev, stat.st_ino) in synced_once_named, directory

    def test_no_spooled_upload_is_left_behind(self):
        storages.files.save_file(io.BytesIO(b"kept"), content_type="text/plain")
        storages.files.save_file(io.BytesIO(b"kept"), content_type="text/plain")
        with pytest.raises(FileTooLarge):
            storages.files.save_file(io.BytesIO(b"too big"), content_type="x/y", max_size=3)
        assert self.spooled() == []


def test_files_go_under_media_root_by_default(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    files = FileSystemFileStorage()
    record = files.save_file(io.BytesIO(b"default place"), content_type="text/plain").record
    hexdigest = record.hash.removeprefix("sha256:")
    assert (tmp_path / "trove" / "blobs" / "sha256" / hexdigest[:2] / hexdigest).exists()


class TestDjangoStorageByDottedPath(FileStorageConformance):
    """Any Django storage, here ``FileSystemStorage`` named by its dotted path."""

    def trove_storage(self, tmp_path):
        options = {
            "storage": "django.core.files.storage.FileSystemStorage",
            "storage_options": {"location": str(tmp_path), "allow_overwrite": True},
        }
        return {
            "events": {"plugin": "storage-memory"},
            "files": {"plugin": "trove.storage.files.DjangoFileStorage", "options": options},
        }
