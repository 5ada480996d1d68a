"""File storages built on Django's storage API: ``storage-file-system`` and ``storage-s3``.

Bytes are stored once per content hash under ``blobs/sha256/<2 hex>/<hex>``; each attached
file also gets a small JSON record under ``records/<2 hex>/<uuid>.json`` so that a file can
be found by id. Incoming bytes are hashed while they are spooled to a temporary file (a
few MB in memory at most), then handed to the Django storage, which streams them on.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from typing import Any, BinaryIO, ClassVar

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.module_loading import import_string

from trove.conf import default_files_directory
from trove.documents import FileRecord
from trove.exceptions import FileIntegrityError, FileTooLarge, NotFound
from trove.storage.base import FileStorage, StoredFile

SPOOL_IN_MEMORY = 4 * 1024 * 1024


class DjangoFileStorage(FileStorage):
    """A file storage over any Django ``Storage``: options ``storage`` (dotted path) and
    ``storage_options`` (its keyword arguments), e.g. a custom django-storages backend."""

    roles: ClassVar[frozenset[str]] = frozenset({"files"})
    option_defaults: ClassVar[dict[str, Any]] = {"storage_options": {}}
    required_options: ClassVar[tuple[str, ...]] = ("storage",)

    def make_storage(self) -> Storage:
        """The Django storage that holds the bytes; subclasses build their own."""
        return import_string(self.options["storage"])(**self.options["storage_options"])

    def initialize(self) -> None:
        self.storage = self.make_storage()

    @staticmethod
    def blob_name(digest: str) -> str:
        algorithm, hexdigest = digest.split(":", 1)
        return f"blobs/{algorithm}/{hexdigest[:2]}/{hexdigest}"

    @staticmethod
    def record_name(file_id: uuid.UUID) -> str:
        return f"records/{file_id.hex[:2]}/{file_id}.json"

    def save_file(
        self,
        content: BinaryIO,
        *,
        content_type: str,
        filename: str | None = None,
        expected_hash: str | None = None,
        max_size: int | None = None,
    ) -> StoredFile:
        hasher, size = hashlib.sha256(), 0
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            while chunk := content.read(self.chunk_size):
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise FileTooLarge(f"File {filename or ''} is larger than {max_size} bytes.")
                hasher.update(chunk)
                spool.write(chunk)
            digest = f"sha256:{hasher.hexdigest()}"
            if expected_hash is not None and expected_hash != digest:
                raise FileIntegrityError(
                    f"File {filename or ''} has hash {digest}, not the declared {expected_hash}."
                )
            name = self.blob_name(digest)
            # A blob cut short by a crash has the right name but the wrong size: rewrite it.
            new_content = not self.storage.exists(name) or self.storage.size(name) != size
            if new_content:
                spool.seek(0)
                self.storage.save(name, File(spool, name=name))
        record = FileRecord(uuid.uuid4(), content_type, filename, size, digest)
        self._save_record(record)
        return StoredFile(record, new_content)

    def save_reference(
        self, uri: str, *, content_type: str, filename: str | None = None
    ) -> FileRecord:
        record = FileRecord(uuid.uuid4(), content_type, filename, is_reference=True, uri=uri)
        self._save_record(record)
        return record

    def _save_record(self, record: FileRecord) -> None:
        body = json.dumps(record.to_dict()).encode()
        self.storage.save(self.record_name(record.id), ContentFile(body))

    def get_file(self, file_id: uuid.UUID) -> FileRecord | None:
        name = self.record_name(file_id)
        try:
            with self.storage.open(name, "rb") as handle:
                return FileRecord.from_dict(json.loads(handle.read()))
        except FileNotFoundError:
            return None

    def open_file(self, file_id: uuid.UUID) -> BinaryIO:
        record = self.get_file(file_id)
        if record is None or record.is_reference or not record.hash:
            raise NotFound(f"File {file_id} has no stored bytes.")
        try:
            return self.storage.open(self.blob_name(record.hash), "rb")
        except FileNotFoundError as error:
            raise NotFound(f"The bytes of file {file_id} ({record.hash}) are missing.") from error

    def delete_file(self, file_id: uuid.UUID, *, delete_content: bool) -> None:
        record = self.get_file(file_id)
        if record is None:
            return
        self.storage.delete(self.record_name(file_id))
        if delete_content and record.hash:
            self.storage.delete(self.blob_name(record.hash))

    def content_exists(self, digest: str) -> bool:
        return self.storage.exists(self.blob_name(digest))


class FileSystemFileStorage(DjangoFileStorage):
    """``storage-file-system``: a local ``directory`` through Django's ``FileSystemStorage``."""

    option_defaults: ClassVar[dict[str, Any]] = {"directory": None}
    required_options: ClassVar[tuple[str, ...]] = ()

    def make_storage(self) -> Storage:
        directory = self.options["directory"] or default_files_directory()
        return FileSystemStorage(location=str(directory), allow_overwrite=True)


class S3FileStorage(DjangoFileStorage):
    """``storage-s3``: S3 or an S3-compatible server through django-storages and boto3.

    Options keep the seed's names; credentials left out come from the usual AWS
    environment (variables, shared config, instance role).
    """

    option_defaults: ClassVar[dict[str, Any]] = {
        "region": None,
        "accessKeyId": None,
        "secretAccessKey": None,
        "endpointUrl": None,
        "prefix": "",
    }
    required_options: ClassVar[tuple[str, ...]] = ("bucket",)

    def make_storage(self) -> Storage:
        from storages.backends.s3 import S3Storage

        return S3Storage(
            bucket_name=self.options["bucket"],
            region_name=self.options["region"],
            access_key=self.options["accessKeyId"],
            secret_key=self.options["secretAccessKey"],
            endpoint_url=self.options["endpointUrl"],
            location=self.options["prefix"],
            file_overwrite=True,
            default_acl=None,
            querystring_auth=True,
        )

    def download_url(self, file_id: uuid.UUID, *, expires: int) -> str | None:
        record = self.get_file(file_id)
        if record is None or record.is_reference or not record.hash:
            return None
        return self.storage.url(self.blob_name(record.hash), expire=expires)
