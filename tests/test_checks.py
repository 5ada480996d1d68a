"""``manage.py check`` reports a misconfigured TROVE setting with an id and a hint."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from trove.checks import check_settings


def errors_for(settings, trove):
    settings.TROVE = trove
    return check_settings()


def storage(**roles):
    return {"storage": {"files": {"plugin": "storage-memory"}, **roles}}


def test_a_valid_configuration_has_no_errors(settings, tmp_path):
    trove = storage(
        events={"plugin": "storage-sqlite", "options": {"path": str(tmp_path / "e.db")}},
        files={"plugin": "storage-s3", "options": {"bucket": "b", "endpointUrl": "http://x"}},
    )
    assert errors_for(settings, trove) == []


def test_a_misspelled_plugin_is_an_error_with_a_hint(settings):
    [error] = errors_for(settings, storage(events={"plugin": "storage-sqlit"}))
    assert error.id == "trove.E002"
    assert "unknown plugin 'storage-sqlit'" in error.msg
    assert "storage-sqlite" in error.hint


def test_manage_py_check_fails_on_a_misspelled_plugin(settings):
    settings.TROVE = storage(events={"plugin": "storage-orn"})
    with pytest.raises(SystemCheckError, match=r"trove\.E002.*storage-orn"):
        call_command("check")


@pytest.mark.parametrize(
    "roles, message",
    [
        ({"events": {"plugin": "storage-s3"}}, "cannot store events"),
        ({"files": {"plugin": "storage-orm"}}, "cannot store files"),
        ({"events": {"plugin": "storage-orm", "options": {"databse": "x"}}}, "databse"),
        ({"events": {"plugin": "storage-sqlite"}}, "needs option(s) path"),
        ({"files": {"plugin": "storage-s3", "options": {"region": "eu"}}}, "bucket"),
        ({"events": {"plugin": "trove.models.Event"}}, "not a subclass of EventStorage"),
        ({"events": {"plugin": "no.such.Module"}}, "cannot import"),
        ({"events": {"plugin": "storage-orm", "extra": 1}}, "unknown key(s) extra"),
        ({"links": {"plugin": "storage-file-system"}}, "cannot store links"),
        (
            {"links": {"plugin": "storage-json-file", "options": {"directory": "/x"}}},
            "cannot store links",
        ),
        ({"events": ["storage-orm"]}, "must be {'plugin'"),
    ],
)
def test_bad_storage_configuration_names_the_role_and_problem(settings, roles, message):
    errors = errors_for(settings, storage(**roles))
    assert errors and all(e.id == "trove.E002" for e in errors)
    assert message in errors[0].msg


def test_unknown_keys_and_wrong_types(settings):
    errors = errors_for(
        settings, {"strict_schema": True, "anonymous_read": "yes", "max_file_size": -1}
    )
    assert [e.id for e in errors] == ["trove.E001", "trove.E003", "trove.E003"]
    assert "strict_schema" in errors[0].msg and "strict_schemas" in errors[0].hint


def test_json_file_events_keep_their_links(settings, tmp_path):
    trove = storage(events={"plugin": "storage-json-file", "options": {"directory": str(tmp_path)}})
    assert errors_for(settings, trove) == []


def test_links_may_use_their_own_storage(settings):
    trove = storage(events={"plugin": "storage-memory"}, links={"plugin": "storage-memory"})
    assert errors_for(settings, trove) == []


@pytest.mark.parametrize("key", ["max_request_size", "max_json_depth", "max_query_terms"])
@pytest.mark.parametrize("value", [0, -5, "10", True, 1.5])
def test_limits_must_be_positive_integers(settings, key, value):
    [error] = errors_for(settings, {key: value})
    assert error.id == "trove.E003" and key in error.msg


def test_limits_have_the_spec_defaults():
    from trove.conf import DEFAULTS

    assert DEFAULTS["max_request_size"] == 10 * 1024 * 1024
    assert DEFAULTS["max_json_depth"] == 64
    assert DEFAULTS["max_query_terms"] == 1000
    assert DEFAULTS["max_file_size"] is None


def test_processors_must_be_a_dict(settings):
    [error] = errors_for(settings, {"processors": ["p"]})
    assert error.id == "trove.E003" and "processors" in error.msg
