"""Test tiers: a tier whose service is missing skips with its reason, unless the matching
``TROVE_REQUIRE_*=1`` variable is set (CI sets them all), in which case the run fails."""

import os

import pytest
from django.conf import settings


def require(variable: str, available: bool, reason: str) -> None:
    """Skip the calling test when a service is missing, or fail when it is required."""
    if available:
        return
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason}, and {variable}=1 requires it.", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def postgres_alias() -> str:
    """The database alias of the PostgreSQL tier."""
    require(
        "TROVE_REQUIRE_POSTGRES",
        "postgres" in settings.DATABASES,
        getattr(settings, "POSTGRES_UNAVAILABLE_REASON", "") or "PostgreSQL is not configured",
    )
    return "postgres"
