"""Incoming bytes on their way into a file storage: read once, and in that one pass
counted, hashed and written to a temporary file, which the storage then publishes whole.

The content's name is its SHA-256, known only at the end, so the bytes wait in a spool
until then. SHA-256 runs at about 1.6 GB/s on one core, slower than writing to the page
cache, so each chunk is hashed on a second thread while the next one is read and written
(``hashlib`` releases the GIL for large buffers, as file reads and writes do). At most
:attr:`OverlappedSha256.depth` chunks wait between the two threads: memory stays flat
whatever the size.

A process killed mid-upload leaves its spool behind, never a visible file: once a storage
has stored its first file in a process, it removes spools :data:`STALE_AFTER` old.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, BinaryIO

from django.core.files import File
from django.core.files.utils import FileProxyMixin

#: Writes a file's data to disk (macOS has no ``fdatasync``; ``fsync`` does that and more).
_FLUSH = getattr(os, "fdatasync", os.fsync)

#: Seconds since a spool was last written after which its upload is surely dead.
STALE_AFTER = 24 * 3600


def remove_stale_spools(directory: str | None) -> None:
    """Delete the spools in ``directory`` (the system's temporary directory if ``None``)
    that nothing has written to for :data:`STALE_AFTER` seconds: processes killed
    mid-upload left them. Best effort: a spool that cannot be removed now stays."""
    cutoff = time.time() - STALE_AFTER
    with contextlib.suppress(OSError), os.scandir(directory or tempfile.gettempdir()) as entries:
        for entry in entries:
            if entry.name.startswith("trove-") and entry.name.endswith(".upload"):
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)


class SpooledUpload(File):
    """A named temporary file holding incoming bytes.

    ``FileSystemStorage`` moves it into place through :meth:`temporary_file_path` (as it
    does Django's own uploads) and S3 uploads it by path; closing removes it unless it was
    moved away.

    A spool that will become the stored bytes themselves (``write_behind``, on the file
    system) starts writing them to disk on a second thread every
    :attr:`write_behind_every` bytes, while more arrive: the ``fsync`` of :meth:`sync`
    then finds little left to write, instead of the whole file after the last byte.
    """

    #: Bytes written between two background flushes of a ``write_behind`` spool.
    write_behind_every = 16 * 1024 * 1024

    def __init__(self, directory: str | None, *, write_behind: bool = False) -> None:
        handle = tempfile.NamedTemporaryFile(
            prefix="trove-", suffix=".upload", dir=directory, delete=False
        )
        super().__init__(handle, name=handle.name)
        self._flusher = ThreadPoolExecutor(1, "trove-flush") if write_behind else None
        self._flushing: Future[None] | None = None
        self._unflushed = 0

    def temporary_file_path(self) -> str:
        return self.file.name

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written: int = self.file.write(data)
        if self._flusher is not None:
            self._unflushed += written
            if self._unflushed >= self.write_behind_every and self._flush_done():
                self.file.flush()
                self._flushing = self._flusher.submit(_FLUSH, self.file.fileno())
                self._unflushed = 0
        return written

    def _flush_done(self) -> bool:
        """Whether no background flush is running; raises the error of one that failed
        (the kernel reports a failed write-back once: it must not be lost)."""
        if self._flushing is None:
            return True
        if not self._flushing.done():
            return False
        self._flushing.result()
        return True

    def sync(self) -> None:
        """Make the bytes durable (flush, then ``fsync``) before they are published."""
        self.file.flush()
        if self._flushing is not None:
            self._flushing.result()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        try:
            if self._flusher is not None:
                self._flusher.shutdown(wait=True)
            self.file.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file.name)


class OverlappedSha256:
    """The SHA-256 of chunks given in order, computed on a second thread.

    :meth:`update` returns as soon as the chunk is queued (it waits only when
    :attr:`depth` chunks are already waiting), so the caller writes one chunk while the
    previous ones are hashed. Content of a single chunk is hashed in the caller's thread
    and starts no thread. Use it as a context manager: leaving stops the thread, also
    when the caller fails half-way.

    :meth:`chunks` reads a stream for it. From a file or an in-memory stream it reads
    into :attr:`depth` + 1 buffers in turn, each reused once its hash is done, rather than
    into a new 1 MiB object per chunk: allocating, faulting in and freeing those cost
    about 8 % of the CPU time of a large upload.
    """

    #: Chunks queued and not yet hashed, at most: what the overlap may hold in memory.
    depth = 4

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._executor: ThreadPoolExecutor | None = None
        # Each queued hash, with the buffer of :meth:`chunks` it reads (``None``: a copy).
        self._pending: collections.deque[tuple[Future[None], bytearray | None]] = (
            collections.deque()
        )
        self._chunks = 0
        self._buffers: dict[int, bytearray] = {}  # id → every buffer :meth:`chunks` made
        self._spare: list[bytearray] = []  # those no queued hash reads

    def chunks(self, stream: BinaryIO, size: int) -> Iterator[bytes | bytearray | memoryview]:
        """The bytes of ``stream`` in chunks of at most ``size``, for the caller to give to
        :meth:`update` before asking for the next one (what ``stream`` gives, unchecked:
        text from a text stream). A chunk read into a buffer stays valid until then."""
        chunk: bytes | memoryview = stream.read(size)  # the first: small content needs no buffer
        readinto = _native_readinto(stream)
        while chunk:
            yield chunk
            if readinto is None:
                chunk = stream.read(size)
                continue
            buffer = self._free_buffer(size)
            chunk = memoryview(buffer)[: readinto(buffer) or 0]

    def _free_buffer(self, size: int) -> bytearray:
        if not self._spare and len(self._buffers) > self.depth and self._pending:
            self._wait_oldest()
        if self._spare:
            return self._spare.pop()
        buffer = bytearray(size)
        self._buffers[id(buffer)] = buffer
        return buffer

    def _wait_oldest(self) -> None:
        future, buffer = self._pending.popleft()
        future.result()
        if buffer is not None:
            self._spare.append(buffer)

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._chunks += 1
        if self._chunks == 1:
            self._hash.update(chunk)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="trove-sha256")
        if len(self._pending) >= self.depth:
            self._wait_oldest()
        # The thread reads the chunk later: no one may change it meanwhile. A buffer of
        # :meth:`chunks` is not refilled before its hash is done; anything else is copied.
        owner = chunk.obj if isinstance(chunk, memoryview) else None
        if isinstance(owner, bytearray) and self._buffers.get(id(owner)) is owner:
            self._pending.append((self._executor.submit(self._hash.update, chunk), owner))
            return
        frozen = chunk if isinstance(chunk, bytes) else bytes(chunk)
        self._pending.append((self._executor.submit(self._hash.update, frozen), None))

    def hexdigest(self) -> str:
        """The digest of every chunk given so far (waits for the queued ones)."""
        while self._pending:
            self._wait_oldest()
        return self._hash.hexdigest()

    def __enter__(self) -> OverlappedSha256:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


#: Streams whose ``readinto`` fills the caller's buffer itself, rather than copying the
#: result of a ``read`` into it (``BufferedIOBase``'s fallback) or being absent.
_READINTO_TYPES = (io.BufferedReader, io.BufferedRandom, io.FileIO, io.BytesIO)


def _native_readinto(stream: Any) -> Callable[[bytearray], int | None] | None:
    """The ``readinto`` of ``stream``, or of the file a Django ``File`` or a temporary file
    wraps (an upload: ``TemporaryUploadedFile``, ``InMemoryUploadedFile``), if it is
    exactly one of :data:`_READINTO_TYPES`; else ``None``, and the stream is read with
    ``read``: a subclass or a wrapper may give other bytes from ``read`` than its file's."""
    for _ in range(3):
        if type(stream) in _READINTO_TYPES:
            readinto: Callable[[bytearray], int | None] = stream.readinto
            return readinto
        passes_through = type(stream) is tempfile._TemporaryFileWrapper or (
            isinstance(stream, File) and type(stream).read is FileProxyMixin.read
        )
        if not passes_through:
            return None
        stream = stream.file
    return None
