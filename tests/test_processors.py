"""Processors (SPEC §9) in one process, on the ORM in the default database, on
``storage-sqlite`` (its own file), a JSON directory and memory: order, filters, stored
positions, failures and retries, derived events (once each, even when the event store
commits apart from the database), settings checks and the admin page. The crash test
(SIGKILL in the middle of a run) is in ``tests/test_feed_server.py``."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError

import trove
from trove import processors
from trove.checks import check_settings
from trove.models import ProcessorPosition
from trove.storage.handler import storages

from . import feed_handlers

pytestmark = pytest.mark.django_db(databases="__all__")


ORM = {"events": {"plugin": "storage-orm"}, "files": {"plugin": "storage-memory"}}


@pytest.fixture(params=["orm", "sqlite-file", "json-file", "memory"])
def store(request, tmp_path) -> dict:
    """The event backend: in the database the positions are in, or outside it."""
    if request.param == "sqlite-file":
        path = django_settings.SQLITE_STORAGE_PATH
        return {**ORM, "events": {"plugin": "storage-sqlite", "options": {"path": path}}}
    if request.param == "json-file":
        events = {"plugin": "storage-json-file", "options": {"directory": str(tmp_path / "e")}}
        return {**ORM, "events": events}
    if request.param == "memory":
        return {**ORM, "events": {"plugin": "storage-memory"}}
    return ORM


def configure(settings, store, **declared) -> None:
    storages.close_all()
    settings.TROVE = {"storage": store, "processors": declared}


@pytest.fixture(autouse=True)
def _reset():
    feed_handlers.calls.clear()
    yield
    storages.close_all()


def test_a_processor_gets_matching_versions_in_order_and_resumes(settings, store):
    configure(
        settings,
        store,
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


def test_derived_events_are_ordinary_events_with_positions(settings, store):
    configure(
        settings, store, derive={"handler": "tests.feed_handlers.derive", "schema": ["work.item"]}
    )
    sources = [trove.create_event("work.item", {"n": n}) for n in range(3)]
    call_command("trove_process", "--once", stdout=open("/dev/null", "w"))
    derived = trove.read_feed(schema="work.done")
    assert [e.payload["source"] for e in derived] == [str(s.uuid) for s in sources]
    assert all(e.position > sources[-1].position for e in derived)
    assert [e.uuid for e in trove.get_backlinks(sources[0].uuid)] == [derived[0].uuid]


def test_a_failure_undoes_its_writes_stops_that_processor_and_spares_the_others(settings, store):
    configure(
        settings,
        store,
        picky={"handler": "tests.feed_handlers.derive_then_fail_on_odd", "schema": ["work.item"]},
        all={"handler": "tests.feed_handlers.record", "schema": ["work.item"]},
    )
    items = [trove.create_event("work.item", {"n": n}) for n in (0, 1, 2)]
    with pytest.raises(CommandError, match="failed"):
        call_command("trove_process", "--once", stdout=open("/dev/null", "w"))
    picky = ProcessorPosition.objects.get(name="picky")
    assert picky.position == items[0].position and picky.failures == 1
    assert "odd n 1" in picky.last_error and str(items[1].uuid) in picky.last_error
    assert len(trove.read_feed(schema="work.done")) == 1  # the failed attempt's writes are gone
    assert feed_handlers.effect_counts() == {str(items[0].uuid): 1}
    assert feed_handlers.calls == items  # the other processor went on
    with pytest.raises(CommandError):
        call_command("trove_process", "picky", "--once", stdout=open("/dev/null", "w"))
    assert ProcessorPosition.objects.get(name="picky").failures == 2
    assert len(trove.read_feed(schema="work.done")) == 1


def test_retries_back_off_and_resume_at_the_failed_version(settings, store, monkeypatch):
    configure(
        settings,
        store,
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
    configure(settings, ORM, **declared)
    errors = [e for e in check_settings() if e.id == "trove.E004"]
    assert len(errors) == 1 and message in errors[0].msg
    with pytest.raises(CommandError):
        call_command("trove_process", "--once")


def test_the_admin_shows_position_lag_and_last_error(settings, store, admin_client):
    configure(
        settings,
        store,
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


def _position_saves_fail_once(monkeypatch) -> None:
    """The database's commit fails after the handler ran: the case of a process killed
    after an event store outside the database committed and before the database did."""
    save = ProcessorPosition.save
    failed = []

    def failing(self, *args, **kwargs):
        if not failed and self.position:  # moving past a handled version
            failed.append(self)
            raise OperationalError("the connection went away")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(ProcessorPosition, "save", failing)


def test_a_version_repeated_after_a_lost_commit_derives_its_events_once(
    settings, store, monkeypatch
):
    configure(
        settings, store, derive={"handler": "tests.feed_handlers.derive", "schema": ["work.item"]}
    )
    items = [trove.create_event("work.item", {"n": n}) for n in range(3)]
    _position_saves_fail_once(monkeypatch)
    [processor] = processors.configured()
    assert processors.handle_next(processor) == 0 and processor.failed
    assert processors.handle_next(processor) == 3 and not processor.failed
    derived = trove.read_feed(schema="work.done")
    assert [e.payload["source"] for e in derived] == [str(item.uuid) for item in items]
    assert feed_handlers.effect_counts() == {str(item.uuid): 1 for item in items}
    assert ProcessorPosition.objects.get(name="derive").position >= items[-1].position


def test_plainly_created_events_repeat_only_outside_the_database(settings, store, monkeypatch):
    """What ``create_derived_event`` is for: with ``trove.create_event`` a repeated version
    creates its event again when the event store committed apart from the database."""
    configure(
        settings,
        store,
        plain={"handler": "tests.feed_handlers.derive_plainly", "schema": ["work.item"]},
    )
    item = trove.create_event("work.item", {})
    _position_saves_fail_once(monkeypatch)
    [processor] = processors.configured()
    processors.handle_next(processor)
    processors.handle_next(processor)
    derived = trove.read_feed(schema="work.done")
    in_database = settings.TROVE["storage"] is ORM
    assert [e.payload["source"] for e in derived] == [str(item.uuid)] * (1 if in_database else 2)


def test_derived_ids_are_per_processor_version_and_key(settings, store):
    ids: list = []

    def handler(event):
        ids.extend([processors.derived_id(), processors.derived_id("b")])
        processors.create_derived_event("work.done", {}, key="a")
        with pytest.raises(ValueError, match="already named"):
            processors.create_derived_event("work.done", {}, key="a")

    configure(settings, store)
    item = trove.create_event("work.item", {})
    trove.append_version(item.uuid, {"v": 2})
    for name in ("one", "other"):
        assert processors.handle_next(processors.Processor(name, handler, ("work.item",))) == 2
    assert len(set(ids)) == 8  # 2 keys x 2 versions x 2 processors
    ProcessorPosition.objects.filter(name="one").update(position=0)  # handled again
    assert processors.handle_next(processors.Processor("one", handler, ("work.item",))) == 2
    assert ids[8:] == ids[:4]
    assert len(trove.read_feed(schema="work.done")) == 4  # the repeat created none
    with pytest.raises(RuntimeError, match="processor's handler"):
        processors.derived_id()
