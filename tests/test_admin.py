"""The admin, through Django's test client, on every kind of event storage.

One small dataset (a note with two versions and a text file, a photo linking to the note,
two back-dated events) is browsed on the ORM (SQLite and PostgreSQL), memory and
JSON-directory backends: the same pages must show the same events and numbers.
"""

from __future__ import annotations

import html
import io
import json
import re
import struct
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

import trove
from trove.admin import browse, events
from trove.admin.diff import json_changes
from trove.admin.events import EventAdmin
from trove.documents import Event, EventId, SchemaRef
from trove.models import EventSchema
from trove.storage import orm
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(databases="__all__")

EVENTS = "/admin/trove/event/"

NOTE_SCHEMA = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}},
}


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour, built by hand so the tests need no imaging library."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class Dataset:
    note: Event  # latest version (2) of a note with a text file
    photo: Event  # links to the note, carries a PNG
    call: Event  # yesterday, non-ASCII payload
    old: Event  # 40 days ago, outside the overview's window
    text: bytes
    image: bytes

    @property
    def latest(self) -> list[Event]:
        return [self.note, self.photo, self.call, self.old]


def build_dataset() -> Dataset:
    """Register a schema and write the events through the Python API (the back-dated two
    through the storage, as an import of history would)."""
    trove.register_schema("note.created", "1.0", NOTE_SCHEMA)
    text = b"2 litres of oat milk\nand bread\n"
    image = png(160, 90, (200, 40, 40))
    first = trove.create_event(
        "note.created",
        {"text": "Buy milk"},
        producer="web",
        metadata={"ip": "192.0.2.1"},
        files=[trove.NewFile(text, "text/plain", "list.txt")],
    )
    note = trove.append_version(first.uuid, {"text": "Buy oat milk", "tags": ["home"]})
    photo = trove.create_event(
        "photo.taken",
        {"caption": "Sunset over the bay"},
        producer="camera",
        links=[{"type": "about", "targetEvent": {"id": str(note.uuid)}, "metadata": {"why": "a"}}],
        files=[trove.NewFile(image, "image/png", "sunset.png")],
    )
    now = timezone.now()
    call, old = (
        storages.events.save_event(
            Event(
                id=EventId(uuid.uuid4(), 1),
                created_at=now - timedelta(days=days),
                schema=SchemaRef("note.created", "1.0"),
                payload={"text": text},
                producer="batch",
            )
        )
        for days, text in ((1, "Call Zoë about the café"), (40, "Renew the passport"))
    )
    return Dataset(note, photo, call, old, text, image)


BACKENDS = ["orm", "orm-postgres", "memory", "json-file"]


def storage_config(backend: str, tmp_path) -> dict:
    events = {
        "orm": {"plugin": "storage-orm"},
        "orm-postgres": {"plugin": "storage-orm", "options": {"database": "postgres"}},
        "memory": {"plugin": "storage-memory"},
        "json-file": {
            "plugin": "storage-json-file",
            "options": {"directory": str(tmp_path / "events")},
        },
    }[backend]
    files = {"plugin": "storage-file-system", "options": {"directory": str(tmp_path / "files")}}
    return {"events": events, "files": files}


@pytest.fixture(params=BACKENDS)
def backend(request, settings, tmp_path):
    if request.param == "orm-postgres":
        request.getfixturevalue("postgres_alias")
    settings.TROVE = {"storage": storage_config(request.param, tmp_path)}
    yield request.param
    storages.close_all()


@pytest.fixture
def memory_backend(settings, tmp_path):
    """One backend for what does not depend on where events live."""
    settings.TROVE = {"storage": storage_config("memory", tmp_path)}
    yield
    storages.close_all()


@pytest.fixture
def postgres_backend(postgres_alias, settings, tmp_path):
    settings.TROVE = {"storage": storage_config("orm-postgres", tmp_path)}
    yield
    storages.close_all()


@pytest.fixture
def data(backend) -> Dataset:
    return build_dataset()


def staff_user(*codenames: str) -> User:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def staff(client):
    """A staff member who may view events and view, add and change schemas."""
    client.force_login(
        staff_user("view_event", "view_eventschema", "add_eventschema", "change_eventschema")
    )
    return client


def listed(response) -> list[str]:
    return re.findall(r'data-event-id="([0-9a-f-]{36})"', response.content.decode())


# The list ----------------------------------------------------------------------------


def test_list_shows_latest_versions_newest_first(staff, data):
    response = staff.get(EVENTS)
    assert listed(response) == [str(e.uuid) for e in (data.photo, data.note, data.call, data.old)]
    assertContains(response, "Buy oat milk")  # the payload summary of the latest version
    assertNotContains(response, "Buy milk")
    assertContains(response, '<td class="field-producer" title="camera">camera</td>', html=True)
    assertContains(response, '<span class="field-version" title="version">v2</span>', html=True)
    assertContains(response, "4 events")


def test_list_rows_show_one_line_of_payload_and_all_of_it_on_hover(staff, memory_backend):
    lines = [{"sku": f"SKU-{n:04}", "quantity": n} for n in range(40)]
    order = trove.create_event("order.placed", {"customer": "Zoë", "lines": lines})
    response = staff.get(EVENTS)
    row = response.content.decode().split(f'data-event-id="{order.uuid}"')[1].split("</tr>")[0]
    shown = re.search(r'<td class="field-payload"><code title="([^"]*)">([^<]*)</code>', row)
    full = json.dumps(order.payload, ensure_ascii=False)
    assert html.unescape(shown[1]) == full  # on hover, in full
    summary = html.unescape(shown[2])
    assert "\n" not in summary and summary.endswith("…") and full.startswith(summary[:-1])
    assert '<td class="field-attached" title="0 files, 0 links">' in row


def test_list_filters_by_schema_producer_and_day(staff, data):
    notes = staff.get(EVENTS, {"schema": "note.created"})
    assert set(listed(notes)) == {str(data.note.uuid), str(data.call.uuid), str(data.old.uuid)}
    assertContains(notes, '<li class="selected"><a href="?schema=note.created">note.created</a>')
    assertContains(notes, "photo.taken")  # still offered as a choice

    batch = staff.get(EVENTS, {"schema": "note.created", "producer": "batch"})
    assert set(listed(batch)) == {str(data.call.uuid), str(data.old.uuid)}

    day = timezone.localtime(data.old.created_at)
    dated = {
        "created_at__year": day.year,
        "created_at__month": day.month,
        "created_at__day": day.day,
    }
    assert listed(staff.get(EVENTS, dated)) == [str(data.old.uuid)]
    year = staff.get(EVENTS, {"created_at__year": day.year})
    assertContains(year, f"created_at__month={day.month}")  # the hierarchy drills down


def test_search_finds_payload_words_any_case_and_event_ids(staff, data):
    assert listed(staff.get(EVENTS, {"q": "OAT milk"})) == [str(data.note.uuid)]
    assert listed(staff.get(EVENTS, {"q": "milk, oat!"})) == [str(data.note.uuid)]
    assert listed(staff.get(EVENTS, {"q": "CAFÉ"})) == [str(data.call.uuid)]
    assert listed(staff.get(EVENTS, {"q": "caf"})) == []  # whole words only
    assert listed(staff.get(EVENTS, {"q": "text"})) == []  # keys don't count
    assert listed(staff.get(EVENTS, {"q": "?!"})) == []
    assert listed(staff.get(EVENTS, {"q": str(data.photo.uuid)})) == [str(data.photo.uuid)]
    assert listed(staff.get(EVENTS, {"q": "passport", "producer": "web"})) == []
    assertContains(staff.get(EVENTS, {"q": "nowhere to be found"}), "No event matches")


def test_list_pages_and_sorts_by_time(staff, data, monkeypatch):
    monkeypatch.setattr(EventAdmin, "list_per_page", 3)
    first = staff.get(EVENTS)
    assert listed(first) == [str(e.uuid) for e in (data.photo, data.note, data.call)]
    assertContains(first, "Page 1 of 2")
    second = staff.get(EVENTS, {"p": 2})
    assert listed(second) == [str(data.old.uuid)]
    past_the_end = staff.get(EVENTS, {"p": 9})
    assertContains(past_the_end, "This page is empty.")
    assertContains(past_the_end, "4 events")
    oldest_first = staff.get(EVENTS, {"o": "created"})
    assert listed(oldest_first) == [str(e.uuid) for e in (data.old, data.call, data.note)]
    assertContains(oldest_first, 'href="?o=created&amp;p=2"')


def test_bad_list_parameters_are_named_and_ignored(staff, memory_backend):
    build_dataset()
    response = staff.get(
        EVENTS, {"created_at__month": "13", "p": "zero", "o": "sideways", "q": "x" * 501}
    )
    assert response.status_code == 200
    assertContains(response, "<li>created_at__month=13: Ensure this value is less than or equal")
    assertContains(response, "<li>p=zero: Enter a whole number.</li>")
    assertContains(response, "<li>o=sideways: Select a valid choice.")
    assertContains(response, "at most 500 characters")
    assertContains(staff.get(EVENTS, {"p": 10**30}), "<li>p=1000000000000000000000000000000:")
    assert len(listed(response)) == 4


def test_postgres_totals_are_estimated_past_a_threshold(staff, postgres_backend, monkeypatch):
    """On a big table the list shows the planner's estimate instead of counting every row."""
    data = build_dataset()
    monkeypatch.setattr(EventAdmin, "list_per_page", 2)
    monkeypatch.setattr(orm, "EXACT_COUNT_BELOW", 0)
    response = staff.get(EVENTS)
    assertContains(response, "about ")
    assert len(listed(response)) == 2
    assertContains(staff.get(EVENTS, {"q": "the"}), "about ")  # a search is estimated too
    monkeypatch.setattr(orm, "EXACT_COUNT_BELOW", 10_000)
    assertContains(staff.get(EVENTS), f"{len(data.latest)} events")


def test_search_on_every_backend_is_the_query_text_and_needs_no_scan(
    staff, memory_backend, monkeypatch
):
    data = build_dataset()
    monkeypatch.setattr(browse, "SCAN_LIMIT", 1)  # what tallies would scan: searches don't
    monkeypatch.setattr(EventAdmin, "list_per_page", 1)
    response = staff.get(EVENTS, {"q": "the"})  # in three payloads
    assert listed(response) == [str(data.photo.uuid)]
    assertContains(response, "3 events")
    assert listed(staff.get(EVENTS, {"q": "the", "p": 3})) == [str(data.old.uuid)]


# One event ---------------------------------------------------------------------------


def test_event_page_shows_payload_versions_files_links_and_backlinks(staff, data):
    page = staff.get(f"{EVENTS}{data.note.uuid}/")
    assertContains(page, "version 2 of 2 (latest)")
    assertContains(page, "&quot;text&quot;: &quot;Buy oat milk&quot;")  # pretty-printed
    assertContains(page, "&quot;ip&quot;: &quot;192.0.2.1&quot;")
    assertContains(page, f'href="{EVENTS}{data.note.uuid}/versions/1/"')
    text_file = data.note.files[0]
    assertContains(page, "list.txt")
    assertContains(page, text_file.hash)
    assertContains(page, f"({len(data.text)} bytes)")
    assertContains(page, f'href="{EVENTS}files/{text_file.id}/"')
    assertContains(page, '<pre class="trove-text">2 litres of oat milk\nand bread\n</pre>')
    assertContains(page, f'href="{EVENTS}{data.photo.uuid}/"')  # the backlink
    assertContains(page, "Linked from (1)")

    photo = staff.get(f"{EVENTS}{data.photo.uuid}/")
    assertContains(photo, f'href="{EVENTS}{data.note.uuid}/" class="trove-link-target"')
    assertContains(photo, "&quot;why&quot;: &quot;a&quot;")
    assertContains(photo, f'src="{EVENTS}files/{data.photo.files[0].id}/?inline=1"')

    first = staff.get(f"{EVENTS}{data.note.uuid}/versions/1/")
    assertContains(first, "version 1 of 2")
    assertContains(first, "&quot;text&quot;: &quot;Buy milk&quot;")
    assertContains(first, f'href="{EVENTS}{data.note.uuid}/versions/2/" rel="next"')


def test_unknown_event_or_version_is_not_found(staff, memory_backend):
    note = build_dataset().note
    assert staff.get(f"{EVENTS}{uuid.uuid4()}/").status_code == 404
    assert staff.get(f"{EVENTS}{note.uuid}/versions/3/").status_code == 404
    assert staff.get(f"{EVENTS}not-a-uuid/").status_code == 404


# Files -------------------------------------------------------------------------------


def test_file_download_streams_bytes_with_safe_headers(staff, memory_backend):
    data = build_dataset()
    text_file, image_file = data.note.files[0], data.photo.files[0]

    download = staff.get(f"{EVENTS}files/{text_file.id}/", {"inline": "1"})
    assert b"".join(download.streaming_content) == data.text
    assert download["Content-Type"] == "text/plain"
    assert download["Content-Disposition"] == 'attachment; filename="list.txt"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download["Content-Security-Policy"]
    assert download["Content-Length"] == str(len(data.text))

    preview = staff.get(f"{EVENTS}files/{image_file.id}/", {"inline": "1"})
    assert b"".join(preview.streaming_content) == data.image
    assert preview["Content-Disposition"] == 'inline; filename="sunset.png"'
    assert staff.get(f"{EVENTS}files/{image_file.id}/")["Content-Disposition"].startswith(
        "attachment"
    )


def test_hostile_file_names_and_types_stay_out_of_headers(staff, memory_backend):
    # The Python API refuses such a content type; a record stored by other means is still
    # served without letting it shape a header.
    html = storages.files.save_file(
        io.BytesIO(b"<script>1</script>"),
        content_type="text/html\r\nX-Evil: 1",
        filename='../a"b\r\n.html',
    ).record
    svg = trove.create_event(
        "upload", {}, files=[trove.NewFile(b"x", "image/svg+xml", "é.svg")]
    ).files[0]
    response = staff.get(f"{EVENTS}files/{html.id}/", {"inline": "1"})
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="a\\"b.html"'
    assert "X-Evil" not in response
    svg_response = staff.get(f"{EVENTS}files/{svg.id}/", {"inline": "1"})
    assert svg_response["Content-Disposition"] == "attachment; filename*=utf-8''%C3%A9.svg"


def test_reference_files_are_shown_but_not_downloadable(staff, memory_backend):
    event = trove.create_event(
        "scan",
        {},
        files=[trove.FileReference("https://example.org/scan.pdf", "application/pdf", "scan.pdf")],
    )
    page = staff.get(f"{EVENTS}{event.uuid}/")
    assertContains(page, 'href="https://example.org/scan.pdf"')
    assert staff.get(f"{EVENTS}files/{event.files[0].id}/").status_code == 404
    assert staff.get(f"{EVENTS}files/{uuid.uuid4()}/").status_code == 404


# Permissions -------------------------------------------------------------------------


def test_events_are_read_only(client, memory_backend):
    note = build_dataset().note
    client.force_login(User.objects.create_superuser("root", password="pw"))
    index = client.get("/admin/")
    assertContains(index, 'href="/admin/trove/event/"')
    assertNotContains(index, 'href="/admin/trove/event/add/"')
    assert client.get(f"{EVENTS}add/").status_code == 404
    assert client.get(f"{EVENTS}{note.uuid}/delete/").status_code == 404
    assert client.post(f"{EVENTS}{note.uuid}/", {"payload": "{}"}).status_code == 405
    assert client.post(EVENTS, {"action": "delete_selected"}).status_code == 405
    assert trove.get_event(note.uuid).payload == note.payload
    page = client.get(f"{EVENTS}{note.uuid}/")
    assertNotContains(page, 'name="_save"')
    assertNotContains(page, "deletelink")


def test_staff_without_permission_is_refused_and_visitors_sent_to_login(client, memory_backend):
    data = build_dataset()
    urls = [
        EVENTS,
        f"{EVENTS}{data.note.uuid}/",
        f"{EVENTS}files/{data.note.files[0].id}/",
        f"{EVENTS}overview/",
    ]
    for url in urls:
        assert client.get(url)["Location"].startswith("/admin/login/")
    client.force_login(staff_user())
    assert [client.get(url).status_code for url in urls] == [403] * len(urls)


# Schemas -----------------------------------------------------------------------------


def test_schema_admin_refuses_a_bad_json_schema_with_the_validators_message(staff, memory_backend):
    form = {"schema_id": "order.placed", "version": "1.0", "description": ""}
    refused = staff.post("/admin/trove/eventschema/add/", {**form, "schema": '{"type": "strin"}'})
    assert refused.status_code == 200
    assertContains(refused, "&#x27;strin&#x27; is not valid under any of the given schemas")
    assert not EventSchema.objects.filter(schema_id="order.placed").exists()

    not_json = staff.post("/admin/trove/eventschema/add/", {**form, "schema": '{"type": '})
    assertContains(not_json, "Enter a valid JSON.")
    assert not EventSchema.objects.filter(schema_id="order.placed").exists()

    saved = staff.post("/admin/trove/eventschema/add/", {**form, "schema": '{"type": "object"}'})
    assert saved.status_code == 302
    assert EventSchema.objects.get(schema_id="order.placed").schema == {"type": "object"}


def test_schema_page_counts_the_events_using_it_per_version(staff, data):
    trove.register_schema("note.created", "2.0", NOTE_SCHEMA)
    trove.create_event({"id": "note.created", "version": "2.0"}, {"text": "New shape"})
    row = EventSchema.objects.get(schema_id="note.created", version="1.0")
    page = staff.get(f"/admin/trove/eventschema/{row.pk}/change/")
    assertContains(page, '<span id="events-using-schema"><strong>3</strong> with this version')
    assertContains(page, "4 with schema note.created in all (version 2.0: 1)")
    assertContains(page, 'href="/admin/trove/event/?schema=note.created"')
    assertContains(page, "&quot;required&quot;: [\n")  # the schema is shown indented


def schema_row(schema_id: str, version: str) -> EventSchema:
    return EventSchema.objects.get(schema_id=schema_id, version=version)


def test_a_schema_version_events_use_can_be_neither_changed_nor_deleted(client, data):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    used = schema_row("note.created", "1.0")
    unused = trove.register_schema("note.created", "2.0", NOTE_SCHEMA)
    unused = schema_row("note.created", "2.0")
    change = f"/admin/trove/eventschema/{used.pk}/change/"

    page = client.get(change)
    assert page.status_code == 200
    assertContains(page, "register a new version instead")
    assertNotContains(page, 'name="_save"')
    assertNotContains(page, 'class="deletelink"')
    assertNotContains(page, 'name="schema"')  # shown, not editable
    form = {"schema_id": "note.created", "version": "1.0", "description": "", "schema": "{}"}
    assert client.post(change, form).status_code == 403
    assert client.get(f"/admin/trove/eventschema/{used.pk}/delete/").status_code == 403
    assert (
        client.post(f"/admin/trove/eventschema/{used.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    bulk = {"action": "delete_selected", "_selected_action": [used.pk, unused.pk], "post": "yes"}
    refused = client.post("/admin/trove/eventschema/", bulk)
    assertContains(refused, "note.created 1.0: used by events; register a new version instead")
    assert schema_row("note.created", "1.0").schema == NOTE_SCHEMA
    assert EventSchema.objects.filter(pk=unused.pk).exists()

    # The page offers to start a new version as a copy of this one.
    assertContains(page, f'href="/admin/trove/eventschema/add/?copy_from={used.pk}"')
    copy = client.get("/admin/trove/eventschema/add/", {"copy_from": used.pk})
    assertContains(copy, 'name="schema_id" value="note.created"')
    assertContains(copy, "&quot;required&quot;: [\n")
    new_version = {**form, "version": "1.1", "schema": json.dumps(NOTE_SCHEMA)}
    assert client.post("/admin/trove/eventschema/add/", new_version).status_code == 302
    assert schema_row("note.created", "1.1").schema == NOTE_SCHEMA

    # A version no event uses stays editable and can be deleted.
    free = client.get(f"/admin/trove/eventschema/{unused.pk}/change/")
    assertContains(free, 'name="_save"')
    assertNotContains(free, "register a new version instead")
    edited = {**form, "version": "2.0", "schema": '{"type": "object"}'}
    assert client.post(f"/admin/trove/eventschema/{unused.pk}/change/", edited).status_code == 302
    assert schema_row("note.created", "2.0").schema == {"type": "object"}
    deleted = client.post(f"/admin/trove/eventschema/{unused.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not EventSchema.objects.filter(pk=unused.pk).exists()


def test_on_the_orm_a_schema_version_only_older_event_versions_use_is_protected(
    client, settings, tmp_path
):
    settings.TROVE = {"storage": storage_config("orm", tmp_path)}
    client.force_login(User.objects.create_superuser("root", password="pw"))
    trove.register_schema("draft", "1", {"type": "object"})
    event = trove.create_event("draft", {"n": 1})
    trove.append_version(event.uuid, {"n": 2}, schema="published")
    page = client.get(f"/admin/trove/eventschema/{schema_row('draft', '1').pk}/change/")
    assertContains(page, "register a new version instead")
    assertNotContains(page, 'name="_save"')
    storages.close_all()


# Version diffs -----------------------------------------------------------------------


def test_event_page_shows_what_changed_from_the_previous_version(staff, data, monkeypatch):
    trove.append_version(
        data.note.uuid,
        {"text": "Buy oat milk", "tags": ["home", "shop"], "due": "today"},
        metadata={"ip": "192.0.2.9"},
        producer="phone",
    )
    page = staff.get(f"{EVENTS}{data.note.uuid}/").content.decode()
    changes = re.findall(
        r'data-where="(\w+)" data-path="([^"]+)" data-kind="(\w+)">.*?'
        r'<td class="trove-old">(.*?)</td>\s*<td class="trove-new">(.*?)</td>',
        page,
        re.S,
    )
    assert [
        (w, html.unescape(p), k, html.unescape(o), html.unescape(n)) for w, p, k, o, n in changes
    ] == [
        ("event", "producer", "changed", '<code>"web"</code>', '<code>"phone"</code>'),
        ("payload", "tags[1]", "added", "", '<code>"shop"</code>'),
        ("payload", "due", "added", "", '<code>"today"</code>'),
        ("metadata", "ip", "changed", '<code>"192.0.2.1"</code>', '<code>"192.0.2.9"</code>'),
    ]
    assert "Changes from version 2 (4)" in page

    second = staff.get(f"{EVENTS}{data.note.uuid}/versions/2/")
    assertContains(second, "Changes from version 1 (2)")
    assertContains(second, 'data-path="tags" data-kind="added"')
    assertContains(second, 'data-path="text" data-kind="changed"')
    assertContains(second, "<code>&quot;Buy milk&quot;</code>")
    assertNotContains(staff.get(f"{EVENTS}{data.note.uuid}/versions/1/"), 'id="event-changes"')

    monkeypatch.setattr(events, "MAX_CHANGES", 1)
    capped = staff.get(f"{EVENTS}{data.note.uuid}/").content.decode()
    assert capped.count('class="trove-change ') == 1
    assert "Changes from version 2 (4)" in capped and "And 3 more changes" in capped


def test_json_changes_name_each_path_with_type_exact_equality():
    old = {"n": 1, "flag": True, "list": [1, 2, 3], "odd key": {"a.b": 1}, "gone": None}
    new = {"n": 1.0, "flag": 1, "list": [1, 5], "odd key": {"a.b": 2}, "new": {}}
    assert [(c.path, c.kind, c.old_text, c.new_text) for c in json_changes(old, new)] == [
        ("flag", "changed", "true", "1"),
        ("list[1]", "changed", "2", "5"),
        ("list[2]", "removed", "3", ""),
        ('["odd key"]["a.b"]', "changed", "1", "2"),
        ("gone", "removed", "null", ""),
        ("new", "added", "", "{}"),
    ]
    assert json_changes({"a": [1, {"b": "x"}]}, {"a": [1, {"b": "x"}]}) == []


# Overview ----------------------------------------------------------------------------


def test_overview_counts_per_day_schema_and_producer(staff, data):
    index = staff.get("/admin/")
    assertContains(index, f'href="{EVENTS}overview/"')
    page = staff.get(f"{EVENTS}overview/")
    html = page.content.decode()

    today = timezone.localdate()
    per_day = Counter(timezone.localtime(e.created_at).date() for e in data.latest)
    shown = dict(re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\d+)</td></tr>", html))
    assert len(shown) == 30
    assert shown == {
        (today - timedelta(days=n)).isoformat(): str(per_day[today - timedelta(days=n)])
        for n in range(30)
    }
    assert 'data-count="0"' in html and f'data-count="{per_day[today]}"' in html

    def counts(field: str) -> dict[str, int]:
        section = html.split(f'id="events-per-{field}"')[1].split("</table>")[0]
        rows = re.findall(r'data-value="([^"]+)" data-count="(\d+)"', section)
        return {value: int(count) for value, count in rows}

    assert counts("schema") == dict(Counter(e.schema.id for e in data.latest))
    assert counts("producer") == dict(Counter(e.producer for e in data.latest))
    assertContains(page, f'<strong id="total-events">{len(data.latest)}</strong>', html=False)
