"""Fixtures of the REST API tests: the storage backend under test and API clients.

``backend`` runs a test on every event backend (links in the event storage): memory,
the ORM on SQLite and on PostgreSQL (skipped without a server unless
``TROVE_REQUIRE_POSTGRES=1``), and the JSON-file backend, with files in memory or on
the local file system. ``memory`` is for tests whose subject is not the backend.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from trove.storage.handler import storages

MEMORY = {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}


def _files_in(tmp_path) -> dict[str, Any]:
    return {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "files")}}


def backend_storage(name: str, tmp_path, database: str = "default") -> dict[str, Any]:
    if name == "memory":
        return MEMORY
    if name == "json-file":
        directory = str(tmp_path / "events")
        return {
            "events": {"plugin": "storage-json-file", "options": {"directory": directory}},
            "files": _files_in(tmp_path),
        }
    return {
        "events": {"plugin": "storage-orm", "options": {"database": database}},
        "files": _files_in(tmp_path),
    }


def use_storage(settings, storage: dict[str, Any], **other: Any) -> None:
    """Configure TROVE and start from empty storages (memory storages outlive settings)."""
    storages.close_all()
    settings.TROVE = {**other, "storage": storage}


@pytest.fixture(params=["memory", "orm-sqlite", "orm-postgresql", "json-file"])
def backend(request, settings, tmp_path) -> str:
    database = request.getfixturevalue("postgres_alias") if "postgresql" in request.param else None
    use_storage(settings, backend_storage(request.param, tmp_path, database or "default"))
    yield request.param
    storages.close_all()


@pytest.fixture
def memory(settings) -> None:
    use_storage(settings, MEMORY)
    yield
    storages.close_all()


def user_with(django_user_model, username: str, *codenames: str):
    user = django_user_model.objects.create_user(username, password=f"{username}-password")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="trove", codename__in=codenames)
    )
    return user


@pytest.fixture
def writer(django_user_model) -> APIClient:
    """Signed in with the permissions to create events and register schemas."""
    client = APIClient()
    client.force_authenticate(
        user_with(django_user_model, "writer", "add_event", "add_eventschema")
    )
    return client


@pytest.fixture
def reader(django_user_model) -> APIClient:
    """Signed in, without any Trove permission."""
    client = APIClient()
    client.force_authenticate(user_with(django_user_model, "reader"))
    return client
