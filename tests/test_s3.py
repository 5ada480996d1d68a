"""Files on S3, for real: a SeaweedFS server started once for this module.

``TROVE_REQUIRE_S3=1`` turns a missing ``weed`` binary from a skip into a failure. The
outage test starts a second server of its own, so this one stays up.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

import trove
from tests.conftest import require
from tests.test_files_cleanup import LeavesNothingBehind
from trove.exceptions import NotFound, StorageError, StorageUnavailable
from trove.storage.files import S3FileStorage
from trove.storage.handler import storages
from trove.testing.conformance import (
    BackendFixture,
    EventStorageConformance,
    FileStorageConformance,
)
from trove.testing.seaweedfs import SeaweedFSServer, weed_unavailable_reason

BUCKET = "trove-tests"


def require_weed() -> None:
    reason = weed_unavailable_reason()
    require("TROVE_REQUIRE_S3", reason is None, f"real S3 tests need SeaweedFS: {reason}")


@pytest.fixture(scope="module")
def s3_server() -> Iterator[SeaweedFSServer]:
    require_weed()
    with SeaweedFSServer() as server:
        server.create_bucket(BUCKET)
        yield server


def s3_options(server: SeaweedFSServer, **extra) -> dict:
    """``storage-s3`` options for ``server``, each test under a key prefix of its own."""
    return {
        "bucket": BUCKET,
        "region": server.region,
        "accessKeyId": server.access_key,
        "secretAccessKey": server.secret_key,
        "endpointUrl": server.endpoint_url,
        "prefix": f"t-{uuid.uuid4().hex}",
        **extra,
    }


class OnSeaweedFS(BackendFixture):
    """Events in memory (or as ``events`` says), files on the module's server."""

    server: SeaweedFSServer
    events = {"plugin": "storage-memory"}

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _seaweedfs(cls, s3_server):
        cls.server = s3_server

    def trove_storage(self, tmp_path):
        self.options = s3_options(self.server)
        return {"events": self.events, "files": {"plugin": "storage-s3", "options": self.options}}

    def stored_names(self) -> set[str]:
        """Every key under this test's prefix."""
        pages = self.server.client().get_paginator("list_objects_v2")
        return {
            item["Key"]
            for page in pages.paginate(Bucket=BUCKET, Prefix=self.options["prefix"] + "/")
            for item in page.get("Contents", [])
        }


class TestS3Files(OnSeaweedFS, FileStorageConformance):
    pass


class TestEventsWithFilesOnS3(OnSeaweedFS, EventStorageConformance):
    pass


class TestS3LeavesNothingBehind(OnSeaweedFS, LeavesNothingBehind):
    events = {"plugin": "storage-orm"}


class TestS3Storage(OnSeaweedFS):
    @pytest.fixture(autouse=True)
    def _spools(self, tmp_path):
        self.spool_directory = tmp_path / "spools"
        self.spool_directory.mkdir()

    def test_objects_live_under_the_prefix_by_content_hash(self):
        event = trove.create_event("doc", {}, files=[trove.NewFile(b"hello", "text/plain")])
        [record] = event.files
        hexdigest = record.hash.removeprefix("sha256:")
        prefix = self.options["prefix"]
        assert self.stored_names() == {
            f"{prefix}/blobs/sha256/{hexdigest[:2]}/{hexdigest}",
            f"{prefix}/records/{record.id.hex[:2]}/{record.id}.json",
            f"{prefix}/refs/sha256/{hexdigest[:2]}/{hexdigest}/{record.id}",
        }

    def test_presigned_url_serves_the_file_then_expires(self):
        event = trove.create_event(
            "doc", {}, files=[trove.NewFile(b"%PDF-1.7 report", "application/pdf", 'Q3 "ö".pdf')]
        )
        file_id = event.files[0].id
        url = storages.files.download_url(file_id, expires=1)
        assert url.startswith(self.server.endpoint_url + "/")
        with urllib.request.urlopen(url) as response:
            assert response.read() == b"%PDF-1.7 report"
            assert response.headers["Content-Type"] == "application/pdf"
            disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment; filename*=utf-8''")
        assert urllib.parse.unquote(disposition.split("''", 1)[1]) == 'Q3 "ö".pdf'
        time.sleep(2.5)  # past the one-second lifetime (signatures count whole seconds)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url)
        assert refused.value.code == 403

    def test_presigned_url_headers_cannot_be_shaped_by_the_record(self):
        record = storages.files.save_file(  # the Python API refuses such a content type
            io.BytesIO(b"<script>"),
            content_type="text/html\r\nX-Evil: 1",
            filename='../a"b\r\n.html',
        ).record
        url = storages.files.download_url(record.id, expires=60)
        with urllib.request.urlopen(url) as response:
            assert response.read() == b"<script>"
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["Content-Disposition"] == 'attachment; filename="a\\"b.html"'
            assert "X-Evil" not in response.headers

    def test_no_presigned_url_for_references_or_unknown_files(self):
        event = trove.create_event(
            "doc", {}, files=[trove.FileReference("s3://elsewhere/key.pdf", "application/pdf")]
        )
        assert storages.files.download_url(event.files[0].id, expires=60) is None
        assert storages.files.download_url(uuid.uuid4(), expires=60) is None

    def test_file_over_the_size_limit_is_refused_before_it_is_stored(self, settings):
        settings.TROVE = {**settings.TROVE, "max_file_size": 1024 * 1024}
        big = io.BytesIO(b"\0" * (3 * 1024 * 1024))
        with pytest.raises(trove.exceptions.FileTooLarge, match="limit of 1048576 bytes"):
            trove.create_event("doc", {}, files=[trove.NewFile(big, filename="big.bin")])
        assert self.stored_names() == set()
        assert trove.count_events() == 0

    def test_an_upload_failing_half_way_leaves_no_object_and_no_open_upload(self, settings):
        """The store drops the second part of a multipart upload: nothing becomes visible,
        the multipart upload is aborted and the local spool removed."""
        settings.FILE_UPLOAD_TEMP_DIR = str(self.spool_directory)
        before = trove.create_event("doc", {}, files=[trove.NewFile(b"before", "text/plain")])
        names = self.stored_names()
        parts = []

        def drop_the_second_part(**kwargs):
            parts.append(kwargs)
            if len(parts) == 2:
                raise EndpointConnectionError(endpoint_url=self.server.endpoint_url)

        events = storages.files.client.meta.events
        events.register("before-call.s3.UploadPart", drop_the_second_part)
        try:
            with pytest.raises(StorageUnavailable):
                trove.create_event("doc", {}, files=[trove.NewFile(os.urandom(20 * 2**20))])
        finally:
            events.unregister("before-call.s3.UploadPart", drop_the_second_part)
        assert len(parts) >= 2
        assert self.stored_names() == names
        uploads = self.server.client().list_multipart_uploads(
            Bucket=BUCKET, Prefix=self.options["prefix"] + "/"
        )
        assert uploads.get("Uploads", []) == []
        assert list(self.spool_directory.iterdir()) == []
        assert [e.uuid for e in trove.query_events({})] == [before.uuid]

    def test_downloads_stream_without_fetching_the_whole_object(self):
        data = bytes(range(256)) * (12 * 4096)  # 12 MB
        stored = storages.files.save_file(io.BytesIO(data), content_type="x/y")
        with storages.files.open_file(stored.record.id) as stream:
            assert not stream.seekable()  # a socket body, not a downloaded temporary copy
            assert stream.read(5) == data[:5]
            rest = b"".join(iter(lambda: stream.read(1024 * 1024), b""))
        assert data[:5] + rest == data


#: A process that stores 40 MiB on S3 and stalls on the second part of the upload.
STALLED_UPLOAD = textwrap.dedent(
    """
    import io, json, os, sys, time
    import django
    from django.conf import settings

    options, spools = json.loads(sys.argv[1]), sys.argv[2]
    settings.configure(INSTALLED_APPS=["trove"], USE_TZ=True, FILE_UPLOAD_TEMP_DIR=spools)
    django.setup()
    from trove.storage.files import S3FileStorage

    files, parts = S3FileStorage(**options), []

    def stall_on_the_second_part(**kwargs):
        parts.append(kwargs)
        if len(parts) == 2:
            time.sleep(120)

    files.client.meta.events.register("before-call.s3.UploadPart", stall_on_the_second_part)
    files.save_file(io.BytesIO(os.urandom(40 * 1024 * 1024)), content_type="x/y")
    """
)


def test_a_process_killed_mid_upload_leaves_nothing_visible_and_is_cleaned_up(
    s3_server, tmp_path, settings, monkeypatch
):
    """Only the marker written before the bytes remains visible; the open multipart upload
    and the spool are removed by a later process once they are old enough (made instant
    here)."""
    options, spools = s3_options(s3_server), tmp_path / "spools"
    spools.mkdir()
    client, prefix = s3_server.client(), options["prefix"] + "/"
    child = subprocess.Popen(
        [sys.executable, "-c", STALLED_UPLOAD, json.dumps(options), str(spools)],
        cwd=Path(__file__).parent.parent,
    )
    try:
        deadline = time.monotonic() + 60
        while not client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads"):
            assert child.poll() is None and time.monotonic() < deadline, "upload never began"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    assert [key.removeprefix(prefix).split("/")[0] for key in keys] == ["refs"]
    assert len(list(spools.iterdir())) == 1

    monkeypatch.setattr("trove.storage.files.STALE_AFTER", 0)
    monkeypatch.setattr("trove.storage.spool.STALE_AFTER", 0)
    settings.FILE_UPLOAD_TEMP_DIR = str(spools)
    S3FileStorage(**options).save_file(io.BytesIO(b"after"), content_type="text/plain")
    assert client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []
    assert list(spools.iterdir()) == []


class TestS3Credentials(BackendFixture):
    """Where the credentials come from, and what a bad configuration answers."""

    @pytest.fixture(autouse=True)
    def _server(self, s3_server):
        self.server = s3_server

    def trove_storage(self, tmp_path):
        return {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}

    def build(self, **options) -> S3FileStorage:
        return S3FileStorage(**{**s3_options(self.server), **options})

    def test_credentials_from_the_aws_environment(self, monkeypatch):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", self.server.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", self.server.secret_key)
        files = self.build(accessKeyId=None, secretAccessKey=None)
        stored = files.save_file(io.BytesIO(b"signed from env"), content_type="text/plain")
        with files.open_file(stored.record.id) as stream:
            assert stream.read() == b"signed from env"

    def test_the_projects_own_django_storages_settings_do_not_leak_in(self, settings):
        settings.AWS_IS_GZIPPED = True
        settings.AWS_S3_CUSTOM_DOMAIN = "cdn.example.invalid"
        settings.AWS_LOCATION = "media"
        settings.AWS_S3_OBJECT_PARAMETERS = {"ContentEncoding": "gzip"}
        files = self.build()
        css = b"body { color: red }" * 100
        stored = files.save_file(io.BytesIO(css), content_type="text/css", filename="a.css")
        with files.open_file(stored.record.id) as stream:
            assert stream.read() == css
        url = files.download_url(stored.record.id, expires=60)
        assert url.startswith(f"{self.server.endpoint_url}/{BUCKET}/{files.prefix}/blobs/")

    def test_wrong_secret_is_a_clear_error_not_an_outage(self):
        files = self.build(secretAccessKey="not-the-secret")
        with pytest.raises(StorageError, match="refused the credentials") as caught:
            files.save_file(io.BytesIO(b"x"), content_type="text/plain")
        assert not isinstance(caught.value, StorageUnavailable)

    def test_missing_bucket_is_named(self):
        files = self.build(bucket="no-such-bucket")
        with pytest.raises(StorageError, match="'no-such-bucket' .* does not exist"):
            files.get_file(uuid.uuid4())


class TestS3Outage(BackendFixture):
    """The object store goes away mid-suite: writes fail clearly and store no event."""

    @pytest.fixture(autouse=True)
    def _doomed_server(self):
        require_weed()
        with SeaweedFSServer() as server:
            server.create_bucket(BUCKET)
            self.server = server
            yield

    def trove_storage(self, tmp_path):
        return {
            "events": {"plugin": "storage-orm"},
            "files": {"plugin": "storage-s3", "options": s3_options(self.server)},
        }

    def test_creating_an_event_with_a_file_fails_and_stores_nothing(self):
        before = trove.create_event("doc", {}, files=[trove.NewFile(b"before", "text/plain")])
        big = storages.files.save_file(
            io.BytesIO(b"\1" * (40 * 1024 * 1024)), content_type="x/y"
        ).record
        stream = storages.files.open_file(big.id)
        stream.read(1)
        endpoint = self.server.endpoint_url
        self.server.stop()

        with pytest.raises(StorageUnavailable) as caught:
            trove.create_event("doc", {"n": 2}, files=[trove.NewFile(b"during", "text/plain")])
        assert endpoint in str(caught.value) and BUCKET in str(caught.value)
        assert [e.uuid for e in trove.query_events({})] == [before.uuid]
        with pytest.raises(StorageUnavailable):
            trove.get_file(before.files[0].id)
        with pytest.raises(StorageUnavailable):
            trove.open_file(before.files[0].id)
        with pytest.raises(StorageUnavailable), stream:
            stream.read()
        with pytest.raises(NotFound):
            trove.get_event(uuid.uuid4())  # events still answer
