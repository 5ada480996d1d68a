"""Keeps Trove's schema registry on the database under test, as a deployment does.

Trove reads a schema's version stamp on every write (``trove.schemas``), so a figure for
events on PostgreSQL must pay that round trip to PostgreSQL, not to a local SQLite file.
A benchmark moves the registry with :func:`schema_registry_on`; the schema must be
registered there too. A server it starts finds it where ``TROVE_BENCH_SCHEMA_REGISTRY``
names (default: ``default``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SchemaRegistryRouter:
    """Routes the ``EventSchema`` model to :attr:`database`; everything else is left alone."""

    database = os.environ.get("TROVE_BENCH_SCHEMA_REGISTRY") or "default"

    def _route(self, model: Any) -> str | None:
        if model._meta.app_label == "trove" and model._meta.model_name == "eventschema":
            return self.database
        return None

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self._route(model)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self._route(model)


@contextmanager
def schema_registry_on(alias: str) -> Iterator[None]:
    """Read and write the schema registry on database ``alias`` inside the block."""
    previous, SchemaRegistryRouter.database = SchemaRegistryRouter.database, alias
    try:
        yield
    finally:
        SchemaRegistryRouter.database = previous
