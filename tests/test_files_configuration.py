"""File storage options: every mistake surfaces in ``manage.py check``, which never
connects anywhere to find them."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

S3 = "storage-s3"
FILE_SYSTEM = "storage-file-system"
GENERIC = "trove.storage.files.DjangoFileStorage"


def check(settings, plugin: str, options: dict) -> str:
    """What ``manage.py check`` reports for Trove with this file storage ("" when happy)."""
    settings.TROVE = {
        "storage": {
            "events": {"plugin": "storage-memory"},
            "files": {"plugin": plugin, "options": options},
        }
    }
    try:
        call_command("check", tags=["trove"], stdout=io.StringIO(), stderr=io.StringIO())
    except SystemCheckError as error:
        return str(error)
    return ""


@pytest.mark.parametrize(
    "plugin, options, message",
    [
        (S3, {"bucket": "b", "bucketName": "b"}, "does not accept option(s) bucketName"),
        (S3, {"region": "eu-west-1"}, "needs option(s) bucket"),
        (S3, {"bucket": "b", "accessKeyId": "AKIA"}, "accessKeyId and secretAccessKey go"),
        (S3, {"bucket": "b", "endpointUrl": "minio:9000"}, "endpointUrl must be an http(s) URL"),
        (S3, {"bucket": "b", "region": 5}, "region must be a string"),
        (S3, {"bucket": "b", "prefix": "media/../secrets"}, "prefix must be a key prefix"),
        (S3, {"bucket": "b", "addressingStyle": "dns"}, "addressingStyle must be"),
        (S3, {"bucket": "b", "connectTimeout": 0}, "connectTimeout must be a positive"),
        (S3, {"bucket": "b", "readTimeout": "20"}, "readTimeout must be a positive"),
        (S3, {"bucket": "b", "maxAttempts": 0}, "maxAttempts must be a whole number"),
        (FILE_SYSTEM, {"path": "/srv/files"}, "does not accept option(s) path"),
        (FILE_SYSTEM, {"directory": 5}, "directory must be a path"),
        (GENERIC, {"storage": "no.such.Storage"}, "Cannot import storage 'no.such.Storage'"),
        (
            GENERIC,
            {
                "storage": "django.core.files.storage.FileSystemStorage",
                "storage_options": {"colour": "red"},
            },
            "rejects storage_options",
        ),
    ],
)
def test_mistakes_are_reported_by_check(settings, plugin, options, message):
    report = check(settings, plugin, options)
    assert "trove.E002" in report
    assert 'TROVE["storage"]["files"]' in report
    assert message in report


def test_check_builds_the_s3_storage_without_connecting(settings):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        options = {
            "bucket": "media",
            "region": "eu-west-1",
            "accessKeyId": "AKIAEXAMPLE",
            "secretAccessKey": "secret",
            "sessionToken": "token",
            "endpointUrl": endpoint,
            "prefix": "trove/",
            "addressingStyle": "path",
            "connectTimeout": 2,
            "readTimeout": 2.5,
            "maxAttempts": 1,
        }
        assert check(settings, S3, options) == ""
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked


def test_valid_file_system_and_generic_configurations_pass(settings, tmp_path):
    assert check(settings, FILE_SYSTEM, {"directory": str(tmp_path)}) == ""
    assert check(settings, FILE_SYSTEM, {}) == ""
    generic = {
        "storage": "django.core.files.storage.FileSystemStorage",
        "storage_options": {"location": str(tmp_path), "allow_overwrite": True},
    }
    assert check(settings, GENERIC, generic) == ""
