"""Files on the local file system: what a crash or a failed upload leaves, where files go
by default, and any Django storage by dotted path."""

from __future__ import annotations

import hashlib
import io

import pytest

from trove.exceptions import FileTooLarge
from trove.storage.files import FileSystemFileStorage
from trove.storage.handler import storages
from trove.testing.conformance import BackendFixture, FileStorageConformance


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
