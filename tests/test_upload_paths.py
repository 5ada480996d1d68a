"""The two ways incoming bytes are read: into reused buffers (files, in-memory streams and
Django uploads) and by ``read`` (any other stream). Both must store the same bytes under the
same hash, whatever the sizes and however short the reads."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import InMemoryUploadedFile, TemporaryUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trove.storage.files import FileSystemFileStorage
from trove.storage.spool import OverlappedSha256, _native_readinto


class OnlyRead:
    """A stream with nothing but ``read``, which gives at most ``most`` bytes a call."""

    def __init__(self, data: bytes, most: int) -> None:
        self._stream = io.BytesIO(data)
        self._most = most

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(min(size, self._most))


class Shifted(io.BytesIO):
    """A subclass whose ``read`` gives other bytes than its buffer: never bypassed."""

    def read(self, size: int | None = -1) -> bytes:
        return bytes((byte + 1) % 256 for byte in super().read(size))


def read_all(hasher: OverlappedSha256, stream, size: int) -> tuple[bytes, str]:
    """Everything :meth:`OverlappedSha256.chunks` gives, copied as a writer would, and its hash."""
    copied = bytearray()
    for chunk in hasher.chunks(stream, size):
        hasher.update(chunk)
        copied += chunk
    return bytes(copied), hasher.hexdigest()


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=5000),
    size=st.integers(min_value=1, max_value=700),
    most=st.integers(min_value=1, max_value=700),
    depth=st.integers(min_value=1, max_value=5),
)
def test_buffers_and_reads_give_the_same_bytes_and_hash(data, size, most, depth):
    expected = hashlib.sha256(data).hexdigest()
    streams = [OnlyRead(data, most), io.BytesIO(data), File(io.BytesIO(data)), ContentFile(data)]
    for stream in streams:
        hasher = OverlappedSha256()
        hasher.depth = depth
        with hasher:
            assert read_all(hasher, stream, size) == (data, expected)


@pytest.mark.parametrize(
    ("stream", "buffered"),
    [
        (io.BytesIO(b"x"), True),
        (File(io.BytesIO(b"x")), True),
        (ContentFile(b"x"), True),
        (OnlyRead(b"x", 1), False),
        (Shifted(b"x"), False),
    ],
)
def test_the_comparisons_cover_both_ways_of_reading(stream, buffered):
    assert (_native_readinto(stream) is not None) is buffered


def test_a_chunk_is_not_refilled_before_its_hash_is_done():
    """Every buffer in flight holds its own chunk: distinct chunks of a long stream."""
    chunks = [bytes([index]) * 64 for index in range(50)]
    with OverlappedSha256() as hasher:
        copied, digest = read_all(hasher, io.BytesIO(b"".join(chunks)), 64)
    assert copied == b"".join(chunks)
    assert digest == hashlib.sha256(copied).hexdigest()


def test_a_subclass_with_its_own_read_is_read_by_read():
    data = bytes(range(200)) * 30
    with OverlappedSha256() as hasher:
        copied, digest = read_all(hasher, Shifted(data), 128)
    assert copied == Shifted(data).read()
    assert digest == hashlib.sha256(copied).hexdigest()


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(FileSystemFileStorage, "chunk_size", 1000)
    return FileSystemFileStorage(directory=str(tmp_path / "files"))


def uploads(data: bytes, tmp_path: Path):
    """The same bytes as every kind of stream a project hands Trove."""
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    temporary = TemporaryUploadedFile("a.bin", "application/octet-stream", len(data), None)
    temporary.write(data)
    temporary.seek(0)
    in_memory = InMemoryUploadedFile(
        io.BytesIO(data), "file", "a.bin", "application/octet-stream", len(data), None
    )
    return {
        "read only": OnlyRead(data, 333),
        "open file": open(path, "rb"),  # noqa: SIM115 - closed below
        "unbuffered file": open(path, "rb", buffering=0),  # noqa: SIM115
        "TemporaryUploadedFile": temporary,
        "InMemoryUploadedFile": in_memory,
    }


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=12_000))
def test_every_kind_of_stream_stores_the_same_file(store, tmp_path, data):
    expected = f"sha256:{hashlib.sha256(data).hexdigest()}"
    for kind, stream in uploads(data, tmp_path).items():
        try:
            record = store.save_file(stream, content_type="application/octet-stream").record
        finally:
            if hasattr(stream, "close"):
                stream.close()
        assert (record.hash, record.size) == (expected, len(data)), kind
        with store.open_file(record.id) as stored:
            assert stored.read() == data, kind
