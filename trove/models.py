"""Tables of the ORM backends (``storage-orm``, ``storage-sqlite``) and the schema registry.

An ``Event`` row is one version of an event. ``files`` and ``links`` are kept on the row as
the document has them, so reading an event is one query; ``EventLink`` and ``EventFile``
repeat them as rows so that link filters, backlinks and file lookups use indexes.
``EventLink`` has no foreign key to ``Event`` because the ORM can also serve as a
stand-alone link storage beside another event storage.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from trove.conf import trove_settings
from trove.exceptions import InvalidSchema
from trove.validation import URN_PREFIX, CheckedSchema, check_schema, schema_urn


def version_key(version: str) -> tuple:
    """Order versions the way people read them: ``1.10`` after ``1.9``, ``2`` after ``1.10``."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"[.\-+]", version)
    )


class EventSchemaQuerySet(models.QuerySet):
    def document(self, uri: str) -> Any:
        """The registered schema a ``$ref`` to ``uri`` names, or ``None``.

        ``urn:trove:schema:<id>:<version>`` names that version; any other URI names the
        registered schema whose ``$id`` it is (the latest version, if several share it).
        """
        if uri.startswith(URN_PREFIX):
            schema_id, _, version = uri[len(URN_PREFIX) :].rpartition(":")
            rows = self.filter(schema_id=schema_id, version=version)
        else:
            rows = self.filter(**{"schema__$id": uri})
        found = max(
            rows.values_list("version", "schema"),
            key=lambda row: version_key(row[0]),
            default=None,
        )
        return None if found is None else found[1]


class EventSchema(models.Model):
    """A JSON Schema registered under (id, version). Events reference it by id and version."""

    schema_id = models.CharField("schema id", max_length=200)
    version = models.CharField(max_length=50)
    schema = models.JSONField(help_text="A JSON Schema document.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EventSchemaQuerySet.as_manager()

    class Meta:
        ordering = ["schema_id", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["schema_id", "version"], name="trove_schema_id_version")
        ]

    def __str__(self) -> str:
        return f"{self.schema_id} {self.version}"

    def check_schema(self) -> CheckedSchema:
        """Check ``schema`` as the document of (``schema_id``, ``version``), with the
        references it may use among the registered schemas (itself included); raise
        :class:`~trove.exceptions.InvalidSchema` listing every problem."""
        uri = schema_urn(self.schema_id, self.version)

        def lookup(other: str) -> Any:
            return self.schema if other == uri else EventSchema.objects.document(other)

        return check_schema(
            self.schema, uri=uri, lookup=lookup, max_depth=trove_settings.max_json_depth
        )

    def clean(self) -> None:
        if self.schema is None:
            return  # the field's own error (missing, not JSON) already says what is wrong
        try:
            self.check_schema()
        except InvalidSchema as error:
            messages = [
                f"{p['field'][7:]}: {p['message']}"
                if p["field"].startswith("schema.")
                else p["message"]
                for p in error.problems
            ]
            raise ValidationError({"schema": messages}) from error


class Event(models.Model):
    """One version of an event; exactly one row per event id has ``is_latest`` set."""

    event_id = models.UUIDField(default=uuid.uuid4)
    version = models.PositiveIntegerField(default=1)
    is_latest = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    producer = models.CharField(max_length=200, default="core")
    schema_id = models.CharField(max_length=200)
    schema_version = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001 - None: no version
    payload = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict)
    files = models.JSONField(default=list)
    links = models.JSONField(default=list)
    #: The payload's words, space-separated, for ``text`` queries (``trove.query.payload_words``).
    words = models.TextField(default="", blank=True, editable=False)
    #: The version's place in the store's commit order (SPEC §9); see :class:`PositionCounter`.
    position = models.BigIntegerField(unique=True)

    class Meta:
        ordering = ["created_at", "event_id"]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "version"], name="trove_event_version"),
            models.UniqueConstraint(
                fields=["event_id"], condition=Q(is_latest=True), name="trove_event_one_latest"
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at", "event_id"],
                condition=Q(is_latest=True),
                name="trove_latest_created",
            ),
            models.Index(
                fields=["producer", "created_at"],
                condition=Q(is_latest=True),
                name="trove_latest_producer",
            ),
            models.Index(
                fields=["schema_id", "created_at"],
                condition=Q(is_latest=True),
                name="trove_latest_schema",
            ),
            # Followers filter the feed by schema; by producer, the position index is
            # scanned instead (one index less for every write to maintain).
            models.Index(fields=["schema_id", "position"], name="trove_feed_schema"),
        ]

    def __str__(self) -> str:
        return f"{self.schema_id} {self.event_id} v{self.version}"


class PositionCounter(models.Model):
    """The last position handed out, in one row per database.

    A writer takes the next positions by updating this row inside the transaction that
    inserts the versions. The update locks the row until that transaction ends, so
    position assignment and commit happen one writer at a time: a writer that gets
    position P+1 can only do so after the holder of P has committed (or rolled back, and
    then P is handed out again, never having been visible). Hence positions become visible
    in order and no reader ever sees P+1 before P (SPEC §9: no late arrivals).

    On SQLite, where one writer at a time holds the database's write lock until it
    commits, that lock does the same: a new event takes the position after the highest
    stored one in its own insert, without writing this row (``ORMEventStorage``).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"last position {self.last}"


class EventLink(models.Model):
    """A link carried by one version of an event, as a row for filtering and backlinks."""

    source_event_id = models.UUIDField()
    source_version = models.PositiveIntegerField()
    position = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=200)
    target_event_id = models.UUIDField()
    target_version = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict)

    class Meta:
        ordering = ["source_event_id", "source_version", "position"]
        indexes = [
            models.Index(fields=["source_event_id", "source_version"], name="trove_link_source"),
            models.Index(fields=["target_event_id", "type"], name="trove_link_target"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.source_event_id} v{self.source_version} -{self.type}-> {self.target_event_id}"
        )


class EventFile(models.Model):
    """A file attached to one version of an event, as a row for lookups by id and hash."""

    event_id = models.UUIDField()
    version = models.PositiveIntegerField()
    position = models.PositiveIntegerField(default=0)
    file_id = models.UUIDField()
    content_type = models.CharField(max_length=255)
    filename = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - None: unnamed
    size = models.BigIntegerField(null=True, blank=True)
    hash = models.CharField(max_length=80, null=True, blank=True)  # noqa: DJ001 - None: a reference
    is_reference = models.BooleanField(default=False)
    uri = models.TextField(null=True, blank=True)  # noqa: DJ001 - None: stored bytes

    class Meta:
        ordering = ["event_id", "version", "position"]
        indexes = [
            models.Index(fields=["event_id", "version"], name="trove_file_event"),
            models.Index(fields=["file_id"], name="trove_file_id"),
            models.Index(fields=["hash"], name="trove_file_hash"),
        ]

    def __str__(self) -> str:
        return self.filename or str(self.file_id)


class ProcessorPosition(models.Model):
    """How far a processor of ``TROVE["processors"]`` has got in the feed (SPEC §9).

    A handler that writes to this database runs in the transaction that moves
    ``position`` past the version it handled, so its effects happen exactly once.
    """

    name = models.CharField(max_length=200, primary_key=True)
    position = models.BigIntegerField(default=0, help_text="The last position handled.")
    failures = models.PositiveIntegerField(
        default=0, help_text="Failed attempts in a row at the next version."
    )
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} at {self.position}"
