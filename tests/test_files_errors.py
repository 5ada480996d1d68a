"""An unreachable or failing file store answers ``StorageUnavailable``, quickly, naming
the directory or the bucket and endpoint, and no event is stored. The real outage
(SeaweedFS stopped mid-test) is in ``test_s3``; these cover what a live server cannot
be made to do on demand."""

from __future__ import annotations

import socket
import uuid

import pytest
from botocore.stub import Stubber

import trove
from trove.exceptions import StorageError, StorageUnavailable
from trove.storage.files import S3FileStorage
from trove.testing.conformance import BackendFixture


@pytest.fixture
def silent_endpoint():
    """An endpoint that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def closed_endpoint() -> str:
    """An endpoint where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def s3(endpoint: str, **options) -> S3FileStorage:
    return S3FileStorage(
        bucket="media", endpointUrl=endpoint, accessKeyId="k", secretAccessKey="s", **options
    )


def test_a_server_that_never_answers_times_out(silent_endpoint):
    files = s3(silent_endpoint, readTimeout=0.5, maxAttempts=1)
    with pytest.raises(StorageUnavailable, match="Read timeout") as caught:
        files.get_file(uuid.uuid4())
    assert "'media'" in str(caught.value) and silent_endpoint in str(caught.value)


@pytest.mark.parametrize(
    "status, code, unavailable",
    [
        (503, "SlowDown", True),
        (500, "InternalError", True),
        (400, "RequestTimeout", True),
        (403, "AccessDenied", False),
        (400, "InvalidArgument", False),
    ],
)
def test_server_errors(status, code, unavailable):
    files = s3(closed_endpoint())
    with Stubber(files.client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        with pytest.raises(StorageError, match=code) as caught:
            files.get_file(uuid.uuid4())
    assert isinstance(caught.value, StorageUnavailable) is unavailable


class TestUnreachableS3(BackendFixture):
    def trove_storage(self, tmp_path):
        self.endpoint = closed_endpoint()
        options = {
            "bucket": "media",
            "endpointUrl": self.endpoint,
            "accessKeyId": "k",
            "secretAccessKey": "s",
            "maxAttempts": 1,
        }
        return {
            "events": {"plugin": "storage-orm"},
            "files": {"plugin": "storage-s3", "options": options},
        }

    def test_creating_an_event_with_a_file_fails_and_stores_no_event(self):
        with pytest.raises(StorageUnavailable, match="is unreachable") as caught:
            trove.create_event("doc", {}, files=[trove.NewFile(b"x", filename="a.txt")])
        assert "file 'a.txt'" in str(caught.value) and self.endpoint in str(caught.value)
        assert trove.count_events() == 0
        trove.create_event("doc", {})  # events without files are still accepted


class TestUnusableDirectory(BackendFixture):
    def trove_storage(self, tmp_path):
        blocker = tmp_path / "a-file"
        blocker.write_bytes(b"")
        self.directory = blocker / "trove"
        return {
            "events": {"plugin": "storage-orm"},
            "files": {
                "plugin": "storage-file-system",
                "options": {"directory": str(self.directory)},
            },
        }

    def test_every_operation_names_the_directory(self):
        with pytest.raises(StorageUnavailable, match=str(self.directory)):
            trove.create_event("doc", {}, files=[trove.NewFile(b"x")])
        assert trove.count_events() == 0
        with pytest.raises(StorageUnavailable, match=str(self.directory)):
            trove.get_file(uuid.uuid4())
        with pytest.raises(StorageUnavailable, match=str(self.directory)):
            trove.open_file(uuid.uuid4())
