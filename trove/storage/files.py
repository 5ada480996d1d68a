"""File storages built on Django's storage API: ``storage-file-system``, ``storage-s3``, and
any Django ``Storage`` given by dotted path.

Layout inside the storage (under the S3 ``prefix``, if any):

``blobs/sha256/<2 hex>/<hex>``
    The bytes, stored once per content hash.
``records/<2 hex>/<uuid>.json``
    One small JSON record per attached file, so that a file is found by its id.
``refs/sha256/<2 hex>/<hex>/<uuid>``
    An empty marker per record holding that content. It is written before the bytes and
    removed after the record, so undoing one failed write never deletes bytes that another
    write of the same content, even a concurrent one, still needs.

Incoming bytes are read once: counted, written to a temporary file (a spool) and hashed
on a second thread, chunk by chunk (:mod:`trove.storage.spool`); only then is the
content's name known. The file system spools inside the store and publishes the spool
itself: fsync, an atomic rename, fsync of the directory. S3 uploads the spool by path in
multipart chunks, as boto3's ``upload_file`` does, so the object appears whole or not at
all. Memory stays flat whatever the size; reading streams as well.

Native errors are translated here, at the boundary: a missing file is ``None`` or
``NotFound``, an unreachable or broken store is ``StorageUnavailable`` naming the directory
or the bucket and endpoint.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.module_loading import import_string

from trove.conf import default_files_directory
from trove.documents import FileRecord
from trove.downloads import presigned_headers
from trove.exceptions import (
    NO_SPACE,
    FileIntegrityError,
    FileTooLarge,
    NotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
    TroveError,
)
from trove.storage.base import FileStorage, StoredFile
from trove.storage.durability import fsync_directory
from trove.storage.spool import STALE_AFTER, OverlappedSha256, SpooledUpload, remove_stale_spools

logger = logging.getLogger(__name__)

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class MissingPackages(ImproperlyConfigured):
    """A plugin's optional packages are not installed; ``hint`` says how to install them."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class DjangoFileStorage(FileStorage):
    """A file storage over any Django ``Storage``: options ``storage`` (dotted path) and
    ``storage_options`` (its keyword arguments), e.g. a custom django-storages backend.

    The storage must overwrite an existing name on save (``file_overwrite`` /
    ``allow_overwrite``): a blob cut short by a crash is rewritten under the same name.
    """

    roles: ClassVar[frozenset[str]] = frozenset({"files"})
    option_defaults: ClassVar[dict[str, Any]] = {"storage_options": {}}
    required_options: ClassVar[tuple[str, ...]] = ("storage",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Building a Django storage connects nowhere, so ``manage.py check`` (which builds
        # plugins) reports the storage's own configuration errors too.
        self.storage = self.make_storage()
        self._stale_uploads_removed = False

    def make_storage(self) -> Storage:
        """The Django storage that holds the bytes; subclasses build their own."""
        path, options = self.options["storage"], self.options["storage_options"]
        try:
            storage_class = import_string(path)
        except ImportError as error:
            raise ImproperlyConfigured(f"Cannot import storage {path!r}: {error}") from error
        if not isinstance(options, dict):
            raise ImproperlyConfigured("storage_options must be a dict of keyword arguments.")
        try:
            return storage_class(**options)
        except TypeError as error:
            raise ImproperlyConfigured(f"{path} rejects storage_options: {error}") from error

    # Naming -----------------------------------------------------------------------

    @staticmethod
    def blob_name(digest: str) -> str:
        algorithm, hexdigest = digest.split(":", 1)
        return f"blobs/{algorithm}/{hexdigest[:2]}/{hexdigest}"

    @staticmethod
    def record_name(file_id: uuid.UUID) -> str:
        return f"records/{file_id.hex[:2]}/{file_id}.json"

    @staticmethod
    def refs_directory(digest: str) -> str:
        algorithm, hexdigest = digest.split(":", 1)
        return f"refs/{algorithm}/{hexdigest[:2]}/{hexdigest}"

    def ref_name(self, digest: str, file_id: uuid.UUID) -> str:
        return f"{self.refs_directory(digest)}/{file_id}"

    # Errors -----------------------------------------------------------------------

    def describe(self) -> str:
        """The store, as error messages name it."""
        return f"the {type(self.storage).__name__} storage"

    def translate_error(self, error: Exception, doing: str) -> Exception | None:
        """The Trove error a native one stands for, or ``None`` to let it through."""
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            return StorageFull(f"Cannot {doing}: {self.describe()} is full ({error}).")
        if isinstance(error, OSError):
            return StorageUnavailable(f"Cannot {doing}: {self.describe()} failed ({error}).")
        return None

    @contextlib.contextmanager
    def errors_translated(self, doing: str) -> Iterator[None]:
        """Re-raise native errors from the block as Trove errors; ``doing`` completes
        "Cannot …" in the message."""
        try:
            yield
        except TroveError:
            raise
        except Exception as error:
            translated = self.translate_error(error, doing)
            if translated is None:
                raise
            raise translated from error

    # Hooks a storage may do better --------------------------------------------------

    def spool_directory(self) -> str | None:
        """Where incoming bytes wait while they are hashed (``None``: the system default)."""
        return settings.FILE_UPLOAD_TEMP_DIR

    def remove_stale_uploads(self) -> None:
        """Remove what uploads of processes killed long ago left (their spools); called
        after the first file each storage instance stores."""
        remove_stale_spools(self.spool_directory())

    def new_spool(self) -> SpooledUpload:
        """A temporary file for incoming bytes, in :meth:`spool_directory`."""
        return SpooledUpload(self.spool_directory())

    def write_blob(self, name: str, spool: SpooledUpload) -> None:
        """Store the spooled bytes under ``name``, replacing what is there."""
        saved = self.storage.save(name, spool)
        if saved != name:
            self.storage.delete(saved)
            raise StorageError(
                f"{self.describe()} saved {name} as {saved}: it must overwrite existing names."
            )

    def write_small(self, name: str, data: bytes) -> None:
        """Store a record or marker of a few bytes under ``name``."""
        self.storage.save(name, ContentFile(data))

    def open_stream(self, name: str) -> BinaryIO:
        """A binary stream of the object ``name``; ``FileNotFoundError`` if it is absent."""
        return self.storage.open(name, "rb")

    def stored_size(self, name: str) -> int | None:
        """The size of the object ``name``, or ``None`` if it is absent."""
        try:
            return self.storage.size(name)
        except FileNotFoundError:
            return None

    def is_referenced(self, digest: str) -> bool | None:
        """Whether any record still holds the content ``digest``; ``None`` for a storage
        that cannot list, which leaves the decision to the caller's ``delete_content``."""
        try:
            _directories, names = self.storage.listdir(self.refs_directory(digest))
        except FileNotFoundError:
            return False
        except NotImplementedError:
            return None
        return bool(names)

    def remove_empty_directory(self, name: str) -> None:  # noqa: B027 - optional hook
        """Tidy up a directory left empty, on storages that have directories."""

    # The FileStorage interface ------------------------------------------------------

    def save_file(
        self,
        content: BinaryIO,
        *,
        content_type: str,
        filename: str | None = None,
        expected_hash: str | None = None,
        max_size: int | None = None,
        file_id: uuid.UUID | None = None,
    ) -> StoredFile:
        label = f"file {filename!r}" if filename else "a file"
        with self.errors_translated(f"receive {label}"):
            spool = self.new_spool()
        with spool:
            digest, size = self._receive(content, spool, label, max_size)
            if expected_hash is not None and expected_hash.lower() != digest:
                raise FileIntegrityError(
                    f"The bytes of {label} have hash {digest}, not the declared {expected_hash}."
                )
            record = FileRecord(file_id or uuid.uuid4(), content_type, filename, size, digest)
            blob = self.blob_name(digest)
            with self.errors_translated(f"store {label}"):
                # The marker goes first: from now on no undo elsewhere deletes these bytes.
                self.write_small(self.ref_name(digest, record.id), b"")
                new_content = False
                try:
                    # A blob cut short by a crash has the right name but the wrong size.
                    new_content = self.stored_size(blob) != size
                    if new_content:
                        self.write_blob(blob, spool)
                    self._save_record(record)
                except BaseException:
                    self._discard(record, delete_content=new_content)
                    raise
        if not self._stale_uploads_removed:  # once the store has proved it answers
            self._stale_uploads_removed = True
            self.remove_stale_uploads()
        return StoredFile(record, new_content)

    def _receive(
        self, content: BinaryIO, spool: SpooledUpload, label: str, max_size: int | None
    ) -> tuple[str, int]:
        """Copy ``content`` into the spool chunk by chunk, hashing each chunk on a second
        thread while the next is written; its ``sha256:<hex>`` and size."""
        size = 0
        with OverlappedSha256() as hasher:
            for chunk in hasher.chunks(content, self.chunk_size):
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise TypeError(f"The stream of {label} gives text: open it in binary mode.")
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise FileTooLarge(
                        f"{label.capitalize()} is larger than the limit of {max_size} bytes "
                        "(TROVE['max_file_size'])."
                    )
                hasher.update(chunk)
                with self.errors_translated(f"receive {label}"):
                    spool.write(chunk)
            with self.errors_translated(f"receive {label}"):
                spool.flush()
            return f"sha256:{hasher.hexdigest()}", size

    def save_reference(
        self,
        uri: str,
        *,
        content_type: str,
        filename: str | None = None,
        file_id: uuid.UUID | None = None,
    ) -> FileRecord:
        record = FileRecord(
            file_id or uuid.uuid4(), content_type, filename, is_reference=True, uri=uri
        )
        with self.errors_translated(f"record the reference {uri}"):
            self._save_record(record)
        return record

    def _save_record(self, record: FileRecord) -> None:
        self.write_small(self.record_name(record.id), json.dumps(record.to_dict()).encode())

    def _read_record(self, file_id: uuid.UUID) -> FileRecord | None:
        try:
            with self.open_stream(self.record_name(file_id)) as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        try:
            return FileRecord.from_dict(json.loads(data))
        except (ValueError, KeyError, TypeError) as error:
            raise StorageError(f"The record of file {file_id} is unreadable: {error!r}") from error

    def get_file(self, file_id: uuid.UUID) -> FileRecord | None:
        with self.errors_translated(f"read the record of file {file_id}"):
            return self._read_record(file_id)

    def open_file(self, file_id: uuid.UUID) -> BinaryIO:
        with self.errors_translated(f"read file {file_id}"):
            record = self._read_record(file_id)
            if record is None or record.is_reference or not record.hash:
                raise NotFound(f"File {file_id} has no stored bytes.")
            try:
                return self.open_stream(self.blob_name(record.hash))
            except FileNotFoundError as error:
                raise NotFound(
                    f"The bytes of file {file_id} ({record.hash}) are missing."
                ) from error

    def delete_file(self, file_id: uuid.UUID, *, delete_content: bool) -> None:
        with self.errors_translated(f"delete file {file_id}"):
            record = self._read_record(file_id)
            if record is not None:
                self._forget(record, delete_content=delete_content)

    def _forget(self, record: FileRecord, *, delete_content: bool) -> None:
        """Delete the record, then its marker, then the bytes if no other record holds them.

        Where markers can be listed, whoever removes the last marker removes the bytes, even
        if another write stored them: two failed writes of the same content, each seeing
        the other's marker, would otherwise both keep bytes that no record holds.
        """
        self.storage.delete(self.record_name(record.id))
        if not record.hash:
            return
        self.storage.delete(self.ref_name(record.hash, record.id))
        referenced = self.is_referenced(record.hash)
        if not referenced:
            if delete_content or referenced is False:
                self.storage.delete(self.blob_name(record.hash))
            self.remove_empty_directory(self.refs_directory(record.hash))

    def _discard(self, record: FileRecord, *, delete_content: bool) -> None:
        """Undo a half-done save. It runs because something already failed (often the store
        itself), so its own failure is logged, never raised over the first error."""
        try:
            self._forget(record, delete_content=delete_content)
        except Exception:
            logger.warning(
                "Could not remove the remains of file %s (%s) from %s.",
                record.id,
                record.hash,
                self.describe(),
                exc_info=True,
            )

    def content_exists(self, digest: str) -> bool:
        if not DIGEST.fullmatch(digest):
            return False
        with self.errors_translated(f"look up content {digest}"):
            return self.storage.exists(self.blob_name(digest))


class FileSystemFileStorage(DjangoFileStorage):
    """``storage-file-system``: a local ``directory`` (default ``MEDIA_ROOT/trove``) through
    Django's ``FileSystemStorage``. Spools live in its ``incoming/`` subdirectory, on the
    same file system, so that storing new bytes is an atomic rename, never a copy."""

    option_defaults: ClassVar[dict[str, Any]] = {"directory": None}
    required_options: ClassVar[tuple[str, ...]] = ()

    def make_storage(self) -> Storage:
        directory = self.options["directory"]
        if directory is not None and not isinstance(directory, str | os.PathLike):
            raise ImproperlyConfigured(f"directory must be a path, not {directory!r}.")
        location = os.fspath(directory) if directory else default_files_directory()
        return FileSystemStorage(location=location, allow_overwrite=True)

    def describe(self) -> str:
        return f"directory {self.storage.location}"

    def check(self) -> None:
        """Bytes are written here: the directory (before the first file, the nearest
        existing parent, where it will be made) must be a writable directory."""
        super().check()
        path = os.path.abspath(self.storage.location)
        while not os.path.lexists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        if not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
            raise StorageUnavailable(f"The {self.describe()} is not a writable directory.")

    def spool_directory(self) -> str:
        directory = os.path.join(self.storage.location, "incoming")
        os.makedirs(directory, exist_ok=True)
        return directory

    def new_spool(self) -> SpooledUpload:
        """The spool becomes the stored file: it is written to disk as the bytes arrive."""
        return SpooledUpload(self.spool_directory(), write_behind=True)

    def write_blob(self, name: str, spool: SpooledUpload) -> None:
        """Durable before it is visible: the spool is fsynced, renamed into place, then the
        directory that gained the name is fsynced, with the parent of each directory made
        for it. An acknowledged file survives a power cut, and a crash never leaves a name
        holding part of its bytes."""
        spool.sync()
        directory = os.path.dirname(self.storage.path(name))
        made, missing = [], directory
        while not os.path.isdir(missing):
            made.append(missing)
            missing = os.path.dirname(missing)
        super().write_blob(name, spool)
        for changed in {directory, *(os.path.dirname(path) for path in made)}:
            fsync_directory(changed)

    def write_small(self, name: str, data: bytes) -> None:
        """Spooled, fsynced and renamed into place like the bytes, so that a record appears
        whole or not at all, even when the process dies in the middle of writing it."""
        with SpooledUpload(self.spool_directory()) as spool:
            spool.write(data)
            spool.flush()
            self.write_blob(name, spool)

    def remove_empty_directory(self, name: str) -> None:
        with contextlib.suppress(OSError):  # not empty after all: a new marker arrived
            os.rmdir(self.storage.path(name))


class S3ObjectStream(io.RawIOBase):
    """The body of one S3 GET, read as it arrives off the socket.

    django-storages' ``S3File`` downloads the whole object into a temporary file (kept in
    memory by default) on first read; this never holds more than the caller asks for.
    """

    def __init__(self, body: Any, storage: S3FileStorage, key: str) -> None:
        super().__init__()
        self._body = body
        self._storage = storage
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._storage.errors_translated(f"read {self._key}"):
            return self._body.readinto(buffer)

    def readall(self) -> bytes:
        with self._storage.errors_translated(f"read {self._key}"):
            return self._body.read()

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3FileStorage(DjangoFileStorage):
    """``storage-s3``: S3 or an S3-compatible server through django-storages and boto3.

    Options keep the seed's names: ``bucket``, ``region``, ``accessKeyId``,
    ``secretAccessKey`` (plus ``sessionToken``), ``endpointUrl`` for non-AWS servers, and
    ``prefix`` for a key prefix. Credentials left out come from the usual AWS environment
    (variables, ``AWS_PROFILE``, shared files, instance or task role). ``addressingStyle``
    defaults to ``path`` with an ``endpointUrl`` (what S3-compatible servers expect) and to
    boto3's choice otherwise. ``connectTimeout``, ``readTimeout`` (seconds) and
    ``maxAttempts`` (tries per request, the first included) bound how long an outage takes
    to surface as ``StorageUnavailable``: seconds, not minutes.

    The credentials need ``s3:GetObject``, ``s3:PutObject``, ``s3:DeleteObject`` and
    ``s3:ListBucket`` (without the last, S3 answers 403 instead of 404 for a missing key).
    """

    option_defaults: ClassVar[dict[str, Any]] = {
        "region": None,
        "accessKeyId": None,
        "secretAccessKey": None,
        "sessionToken": None,
        "endpointUrl": None,
        "prefix": "",
        "addressingStyle": None,
        "connectTimeout": 5,
        "readTimeout": 20,
        "maxAttempts": 3,
    }
    required_options: ClassVar[tuple[str, ...]] = ("bucket",)

    def make_storage(self) -> Storage:
        # Imported here: boto3 and django-storages are the optional ``s3`` extra, and a
        # project without S3 must run (and pass ``manage.py check``) without them.
        try:
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
            from storages.backends.s3 import S3Storage
        except ImportError as error:
            raise MissingPackages(
                f"storage-s3 needs boto3 and django-storages, which are not installed ({error}).",
                hint='pip install "trove-django[s3]"',
            ) from error

        options = self.options
        self._check_options()
        self.bucket = options["bucket"]
        self.prefix = options["prefix"].strip("/")
        style = options["addressingStyle"] or ("path" if options["endpointUrl"] else "auto")
        client_config = Config(
            s3={"addressing_style": style},
            # boto3 may presign with the deprecated SigV2 otherwise, which servers refuse.
            signature_version="s3v4",
            connect_timeout=options["connectTimeout"],
            read_timeout=options["readTimeout"],
            retries={"mode": "standard", "total_max_attempts": options["maxAttempts"]},
        )
        # Every setting django-storages would otherwise take from AWS_* Django settings is
        # pinned: a project's own S3 media settings must not change how Trove stores bytes
        # (gzip would change them, a custom domain would break presigned URLs).
        return S3Storage(
            bucket_name=self.bucket,
            region_name=options["region"],
            endpoint_url=options["endpointUrl"],
            access_key=options["accessKeyId"],
            secret_key=options["secretAccessKey"],
            security_token=options["sessionToken"],
            session_profile=None,
            location=self.prefix,
            client_config=client_config,
            transfer_config=TransferConfig(),
            file_overwrite=True,
            default_acl=None,
            object_parameters={},
            querystring_auth=True,
            custom_domain=None,
            cloudfront_signer=None,
            gzip=False,
        )

    def _check_options(self) -> None:
        options = self.options
        for name in ("bucket", "region", "accessKeyId", "secretAccessKey", "sessionToken"):
            if options[name] is not None and not isinstance(options[name], str):
                raise ImproperlyConfigured(f"{name} must be a string, not {options[name]!r}.")
        if bool(options["accessKeyId"]) != bool(options["secretAccessKey"]):
            raise ImproperlyConfigured(
                "accessKeyId and secretAccessKey go together: give both, or neither to use "
                "the AWS environment."
            )
        endpoint = options["endpointUrl"]
        if endpoint is not None and not (
            isinstance(endpoint, str) and endpoint.startswith(("http://", "https://"))
        ):
            raise ImproperlyConfigured(f"endpointUrl must be an http(s) URL, not {endpoint!r}.")
        if not isinstance(options["prefix"], str) or ".." in options["prefix"].split("/"):
            raise ImproperlyConfigured(f"prefix must be a key prefix, not {options['prefix']!r}.")
        if options["addressingStyle"] not in (None, "auto", "path", "virtual"):
            raise ImproperlyConfigured("addressingStyle must be 'auto', 'path' or 'virtual'.")
        for name in ("connectTimeout", "readTimeout"):
            value = options[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ImproperlyConfigured(f"{name} must be a positive number of seconds.")
        attempts = options["maxAttempts"]
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ImproperlyConfigured("maxAttempts must be a whole number, 1 or more.")

    @property
    def client(self) -> Any:
        """The boto3 client of the calling thread, configured as above."""
        return self.storage.connection.meta.client

    def key(self, name: str) -> str:
        """The object key of a storage name: under ``prefix``, as django-storages puts it."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self) -> str:
        where = self.options["endpointUrl"] or "AWS"
        return f"S3 bucket {self.bucket!r} at {where}"

    def translate_error(self, error: Exception, doing: str) -> Exception | None:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            IncompleteReadError,
            NoCredentialsError,
            PartialCredentialsError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        where = self.describe()
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if status >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable"):
                return StorageUnavailable(
                    f"Cannot {doing}: {where} answered {status} {code}; try again later."
                )
            if code == "NoSuchBucket":
                return StorageError(f"Cannot {doing}: {where} does not exist.")
            if status == 403:
                return StorageError(
                    f"Cannot {doing}: {where} refused the credentials ({code}). They need "
                    "s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket."
                )
            return StorageError(f"Cannot {doing}: {where} answered {status} {code} {message}")
        if isinstance(error, HTTPClientError | BotoConnectionError | IncompleteReadError):
            return StorageUnavailable(f"Cannot {doing}: {where} is unreachable ({error}).")
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return StorageError(
                f"Cannot {doing}: no credentials for {where}; set the accessKeyId and "
                "secretAccessKey options or the AWS environment (AWS_ACCESS_KEY_ID, …)."
            )
        if isinstance(error, BotoCoreError):
            return StorageError(f"Cannot {doing}: {where} failed ({error}).")
        return super().translate_error(error, doing)

    def write_blob(self, name: str, spool: SpooledUpload) -> None:
        """Upload by path, as ``boto3``'s ``upload_file`` does: parts are read from disk
        as they are sent, never the whole file (``upload_fileobj`` would buffer parts)."""
        from boto3.s3.transfer import create_transfer_manager

        with create_transfer_manager(self.client, self.storage.transfer_config) as transfers:
            future = transfers.upload(
                spool.temporary_file_path(),
                self.bucket,
                self.key(name),
                extra_args={"ContentType": "application/octet-stream"},
            )
            future.result()

    def remove_stale_uploads(self) -> None:
        """Also abort the multipart uploads of blobs begun :data:`STALE_AFTER` seconds ago
        or more: a killed process never completed them, and S3 keeps (and bills) their
        parts until aborted. Best effort: without ``s3:ListBucketMultipartUploads`` it is
        left to a lifecycle rule (``AbortIncompleteMultipartUpload``)."""
        super().remove_stale_uploads()
        cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=STALE_AFTER)
        try:
            pages = self.client.get_paginator("list_multipart_uploads")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.key("blobs/")):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
        except Exception as error:
            logger.info("Left stale multipart uploads in %s: %s", self.describe(), error)

    def write_small(self, name: str, data: bytes) -> None:
        content_type = "application/json" if name.endswith(".json") else "text/plain"
        self.client.put_object(
            Bucket=self.bucket, Key=self.key(name), Body=data, ContentType=content_type
        )

    def is_referenced(self, digest: str) -> bool:
        prefix = self.key(self.refs_directory(digest)) + "/"
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(listing.get("Contents"))

    def open_stream(self, name: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        key = self.key(name)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from error
            raise
        raw = S3ObjectStream(response["Body"], self, key)
        return io.BufferedReader(raw, buffer_size=self.chunk_size)

    def download_url(self, file_id: uuid.UUID, *, expires: int) -> str | None:
        """A presigned GET valid for ``expires`` seconds that answers with the file's own
        content type and an ``attachment`` disposition (the bytes may be shared by files of
        other names and types)."""
        with self.errors_translated(f"sign a download URL for file {file_id}"):
            record = self._read_record(file_id)
            if record is None or record.is_reference or not record.hash:
                return None
            headers = presigned_headers(record)
            return self.storage.url(
                self.blob_name(record.hash),
                parameters={
                    "ResponseContentType": headers["type"],
                    "ResponseContentDisposition": headers["disposition"],
                },
                expire=expires,
            )
