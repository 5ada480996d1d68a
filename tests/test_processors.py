"""Processors (SPEC §9) in one process: order, filters, stored positions, failures and
retries, derived events, settings checks and the admin page. The crash test (SIGKILL in
the middle of a run) is in ``tests/test_feed_server.py``."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

import trove
from trove import processors
from trove.checks import check_settings
from trove.models import ProcessorPosition
from trove.storage.handler import storages

from . import feed_handlers

pytestmark = pytest.mark.django_db


def configure(settings, **declared) -> None:
    storages.close_all()
    settings.TROVE = {
        "storage": {"events": {"plugin": "storage-orm"}, "files": {"plugin": "storage-memory"}},
        "processors": declared,
    }


@pytest.fixture(autouse=True)
def _reset():
    feed_handlers.calls.clear()
    yield
    storages.close_all()


def test_a_processor_gets_matching_versions_in_order_and_resumes(settings):
    configure(
        settings,
        notes={"handler": "tests.feed_handlers.record", "schema": ["note"], "producer": ["web"]},
    )
    a = trove.create_event("note", {"i": 1}, producer="web")
    trove.create_event("other", {"i": 2}, producer="web")
    trove.create_event("note", {"i": 3}, producer="api")
    a2 = trove.append_version(a.uuid, {"i": 4})
    call_command("trove_process", "--once", stdout=open("/dev/null", "w"))
    assert feed_handlers.calls == [a, a2]
    row = ProcessorPosition.objects.get(name="notes")
    assert row.position == a2.position and row.failures == 0 and row.last_error == ""
    later = trove.create_event("note", {"i": 5}, producer="web")
    trove.create_event("other", {"i": 6})
    call_command("trove_process", "notes", "--once", stdout=open("/dev/null", "w"))
    assert feed_handlers.calls == [a, a2, later]
    assert ProcessorPosition.objects.get(name="notes").position == storages.events.last_position()


def test_derived_events_are_ordinary_events_with_positions(settings):
    configure(settings, derive={"handler": "tests.feed_handlers.derive", "schema": ["work.item"]})
    sources = [trove.create_event("work.item", {"n": n}) for n in range(3)]
    call_command("trove_process", "--once", stdout=open("/dev/null", "w"))
    derived = trove.read_feed(schema="work.done")
    assert [e.payload["source"] for e in derived] == [str(s.uuid) for s in sources]
    assert all(e.position > sources[-1].position for e in derived)
    assert [e.uuid for e in trove.get_backlinks(sources[0].uuid)] == [derived[0].uuid]


def test_a_failure_undoes_its_writes_stops_that_processor_and_spares_the_others(settings):
    configure(
        settings,
        picky={"handler": "tests.feed_handlers.derive_then_fail_on_odd", "schema": ["work.item"]},
        all={"handler": "tests.feed_handlers.record", "schema": ["work.item"]},
    )
    items = [trove.create_event("work.item", {"n": n}) for n in (0, 1, 2)]
    with pytest.raises(CommandError, match="failed"):
        call_command("trove_process", "--once", stdout=open("/dev/null", "w"))
    picky = ProcessorPosition.objects.get(name="picky")
    assert picky.position == items[0].position and picky.failures == 1
    assert "odd n 1" in picky.last_error and str(items[1].uuid) in picky.last_error
    assert len(trove.read_feed(schema="work.done")) == 1  # the failed attempt's write is gone
    assert feed_handlers.calls == items  # the other processor went on
    with pytest.raises(CommandError):
        call_command("trove_process", "picky", "--once", stdout=open("/dev/null", "w"))
    assert ProcessorPosition.objects.get(name="picky").failures == 2
    assert len(trove.read_feed(schema="work.done")) == 1


def test_retries_back_off_and_resume_at_the_failed_version(settings, monkeypatch):
    configure(
        settings,
        picky={"handler": "tests.feed_handlers.derive_then_fail_on_odd", "schema": ["work.item"]},
    )
    items = [trove.create_event("work.item", {"n": n}) for n in (0, 1, 2)]
    [processor] = processors.configured()
    clock = [1000.0]
    monkeypatch.setattr(processors.time, "monotonic", lambda: clock[0])
    assert processors.handle_next(processor) == 1 and processor.failed
    assert processor.retry_at == 1001.0  # 1 s after the first failure
    processors.handle_next(processor)
    assert processor.retry_at == 1002.0  # 2 s after the second
    processor.handler = feed_handlers.derive  # the bug is fixed
    assert processors.handle_next(processor) == 2 and not processor.failed
    row = ProcessorPosition.objects.get(name="picky")
    assert row.position >= items[2].position and (row.failures, row.last_error) == (0, "")
    sources = [e.payload["source"] for e in trove.read_feed(schema="work.done")]
    assert sources == [str(item.uuid) for item in items]


@pytest.mark.parametrize(
    "declared, message",
    [
        ({"p": {"handler": "tests.feed_handlers.missing"}}, "cannot import"),
        ({"p": {"handler": "no.such.module.f"}}, "cannot import"),
        ({"p": {"schema": ["s"]}}, "needs 'handler'"),
        ({"p": {"handler": "tests.feed_handlers.record", "schema": "s"}}, "list of non-empty"),
        ({"p": {"handler": "tests.feed_handlers.record", "producer": [""]}}, "list of non-empty"),
        ({"p": {"handler": "tests.feed_handlers.record", "every": 1}}, "unknown key 'every'"),
        ({"p": ["tests.feed_handlers.record"]}, "must be a dict"),
    ],
)
def test_malformed_processors_are_reported_by_manage_py_check(settings, declared, message):
    configure(settings, **declared)
    errors = [e for e in check_settings() if e.id == "trove.E004"]
    assert len(errors) == 1 and message in errors[0].msg
    with pytest.raises(CommandError):
        call_command("trove_process", "--once")


def test_the_admin_shows_position_lag_and_last_error(settings, admin_client):
    configure(
        settings,
        picky={"handler": "tests.feed_handlers.derive_then_fail_on_odd", "schema": ["work.item"]},
    )
    for n in (0, 1, 2):
        trove.create_event("work.item", {"n": n})
    with pytest.raises(CommandError):
        call_command("trove_process", "--once", stdout=open("/dev/null", "w"))
    row = ProcessorPosition.objects.get(name="picky")
    lag = storages.events.last_position() - row.position
    page = admin_client.get("/admin/trove/processorposition/").content.decode()
    assert "picky" in page and f'<td class="field-lag">{lag}</td>' in page
    assert "odd n 1" in page
    detail = admin_client.get("/admin/trove/processorposition/picky/change/")
    assert detail.status_code == 200 and "odd n 1" in detail.content.decode()
    assert admin_client.get("/admin/trove/processorposition/add/").status_code == 403
