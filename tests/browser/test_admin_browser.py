"""A staff member's visit to the admin in Chromium, for events in the ORM and in a JSON
directory: log in, filter, search, sort, open events, follow links, move between versions,
download a file, and read the overview."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.formats import date_format

from tests.test_admin import Dataset, build_dataset, staff_user, storage_config
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["orm", "json-file"])
def data(request, browser, settings, tmp_path) -> Dataset:
    settings.TROVE = {"storage": storage_config(request.param, tmp_path)}
    yield build_dataset()
    storages.close_all()


@pytest.fixture
def staff(data) -> User:
    return staff_user("view_event", "view_eventschema", "add_eventschema", "change_eventschema")


def log_in(page, user: User, next_url: str = "/admin/") -> None:
    page.goto(next_url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_url}")


def expect_rows(page, *events) -> None:
    """The list shows exactly these events in this order (waiting for the page to load)."""
    from playwright.sync_api import expect  # imported late: a missing package skips the tier

    expect(page.locator("#result_list tr.trove-event a.trove-id")).to_have_text(
        [f"{str(event.uuid)[:8]}…" for event in events]
    )


def test_filter_search_and_sort_the_event_list(page, data, staff, screenshot):
    log_in(page, staff)
    page.click("#content-main a[href='/admin/trove/event/']")
    expect_rows(page, data.photo, data.note, data.call, data.old)
    screenshot("list")

    filters = page.locator("#changelist-filter")
    filters.get_by_role("link", name="note.created", exact=True).click()
    expect_rows(page, data.note, data.call, data.old)
    filters.get_by_role("link", name="batch", exact=True).click()
    expect_rows(page, data.call, data.old)
    page.get_by_role("link", name="Clear all filters").click()
    expect_rows(page, data.photo, data.note, data.call, data.old)

    page.fill("#searchbar", "OAT milk")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=OAT+milk**")
    expect_rows(page, data.note)
    page.get_by_role("link", name="Clear all filters").click()
    page.wait_for_url("**/admin/trove/event/?")

    old = timezone.localtime(data.old.created_at)
    dates = page.locator("nav.toplinks")
    dates.get_by_role("link", name=str(old.year), exact=True).click()
    dates.get_by_role("link", name=date_format(old, "F Y"), exact=True).click()
    dates.get_by_role("link", name=date_format(old, "M j"), exact=True).click()
    expect_rows(page, data.old)

    page.get_by_role("link", name="Clear all filters").click()
    page.click("#sort-by-time")
    expect_rows(page, data.old, data.call, data.note, data.photo)


def test_open_an_event_follow_its_link_and_move_between_versions(page, data, staff, screenshot):
    log_in(page, staff, "/admin/trove/event/")
    page.click(f"tr[data-event-id='{data.photo.uuid}'] a.trove-id")
    page.wait_for_url(f"**/{data.photo.uuid}/")
    assert "Sunset over the bay" in page.inner_text("#event-payload")
    image = page.locator("img.trove-image").element_handle()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [160, 90]
    screenshot("event-photo")

    page.click("a.trove-link-target")
    page.wait_for_url(f"**/{data.note.uuid}/")
    assert "version 2 of 2 (latest)" in page.inner_text("#event-heading")
    assert "Buy oat milk" in page.inner_text("#event-payload")
    assert "2 litres of oat milk" in page.inner_text("pre.trove-text")
    backlinks = page.locator("#event-backlinks")
    assert "photo.taken" in backlinks.inner_text()
    screenshot("event-note")

    page.click("#previous-version")
    page.wait_for_url(f"**/{data.note.uuid}/versions/1/")
    assert '"text": "Buy milk"' in page.inner_text("#event-payload")
    page.click("#next-version")
    page.wait_for_url(f"**/{data.note.uuid}/versions/2/")

    page.locator("#event-backlinks").get_by_role("link", name=str(data.photo.uuid)).click()
    page.wait_for_url(f"**/{data.photo.uuid}/")


def test_download_a_file_and_get_the_same_bytes(page, data, staff):
    log_in(page, staff, f"/admin/trove/event/{data.note.uuid}/")
    with page.expect_download() as info:
        page.click("a.trove-download")
    download = info.value
    assert download.suggested_filename == "list.txt"
    with open(download.path(), "rb") as saved:
        assert saved.read() == data.text

    image_url = f"/admin/trove/event/files/{data.photo.files[0].id}/"
    response = page.request.get(image_url)
    assert response.ok and response.body() == data.image


def test_the_overview_from_the_admin_index(page, data, staff, screenshot):
    log_in(page, staff)
    page.locator("#trove-overview-module").get_by_role("link", name="Overview", exact=True).click()
    page.wait_for_url("**/admin/trove/event/overview/")
    bars = page.locator("svg rect.trove-bar")
    assert bars.count() == 30
    today = timezone.localdate().isoformat()
    created_today = sum(
        1 for e in data.latest if timezone.localtime(e.created_at).date().isoformat() == today
    )
    assert bars.last.get_attribute("data-day") == today
    assert bars.last.get_attribute("data-count") == str(created_today)
    assert bars.last.bounding_box()["height"] > 0
    per_schema = page.locator("#events-per-schema tr[data-value='note.created']")
    assert per_schema.get_attribute("data-count") == "3"
    assert page.inner_text("#total-events") == "4"
    screenshot("overview")

    page.locator("#events-per-producer").get_by_role("link", name="camera").click()
    expect_rows(page, data.photo)


# Layout, protected schemas, version diffs (SPEC §6) -------------------------------------

LONG_PAYLOAD = {
    "customer": {"name": "Zoë Quartermaine-Abernathy", "email": "zoe@example.org"},
    "lines": [{"sku": f"SKU-{n:05}", "quantity": n, "note": "gift wrapped"} for n in range(12)],
    "comment": "Leave the parcel with the neighbour at number 42 if nobody answers the door",
}


def test_the_event_list_fits_1280_pixels_with_one_line_rows(page, data, staff, screenshot):
    import trove

    order = trove.create_event(
        "order.placed.with-a-longish-schema-id", LONG_PAYLOAD, producer="checkout-service-eu"
    )
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, staff, "/admin/trove/event/")
    expect_rows(page, order, data.photo, data.note, data.call, data.old)
    screenshot("list-1280")

    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    results = page.locator("#changelist .results")
    assert results.evaluate("el => el.scrollWidth <= el.clientWidth")
    for header in page.locator("#result_list thead th").all():
        box = header.bounding_box()
        assert box["x"] + box["width"] <= width, header.inner_text()
    attached = page.locator(f"tr[data-event-id='{data.photo.uuid}'] td.field-attached")
    box = attached.bounding_box()
    assert box["x"] + box["width"] <= width

    # One line per row: the long payload is cut with an ellipsis, in full on hover.
    row = page.locator(f"tr[data-event-id='{order.uuid}']")
    line = row.locator("a.trove-id").bounding_box()["height"]  # one line of text, no padding
    for each in page.locator("#result_list tr.trove-event").all():
        assert each.bounding_box()["height"] < 2 * line + 10, each.get_attribute("data-event-id")
    summary = row.locator("td.field-payload code")
    assert summary.evaluate("el => el.scrollWidth > el.clientWidth")  # overflowing, clipped
    assert summary.evaluate("el => getComputedStyle(el).textOverflow") == "ellipsis"
    assert '"comment": "Leave the parcel' in summary.get_attribute("title")


def test_a_schema_version_in_use_is_read_only_with_a_note(page, data, staff, screenshot):
    from trove.models import EventSchema

    row = EventSchema.objects.get(schema_id="note.created", version="1.0")
    log_in(page, staff, f"/admin/trove/eventschema/{row.pk}/change/")
    assert "register a new version instead" in page.inner_text("ul.messagelist")
    assert page.locator("input[name=_save], input[name=_continue]").count() == 0
    assert page.locator("a.deletelink, textarea[name=schema]").count() == 0
    assert '"required": [' in page.inner_text(".field-schema_document pre")
    screenshot("schema-in-use")

    page.click("#register-new-version")
    page.wait_for_url("**/eventschema/add/?copy_from=*")
    assert page.input_value("#id_schema_id") == "note.created"
    page.fill("#id_version", "1.1")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/trove/eventschema/")
    assert EventSchema.objects.get(schema_id="note.created", version="1.1").schema == row.schema


def test_an_event_page_shows_the_changes_from_the_previous_version(page, data, staff, screenshot):
    log_in(page, staff, f"/admin/trove/event/{data.note.uuid}/")
    changes = page.locator("#event-changes")
    assert "Changes from version 1 (2)" in changes.locator("h2").inner_text()
    text = changes.locator("tr[data-path='text']")
    assert text.locator("td.trove-old").inner_text() == '"Buy milk"'
    assert text.locator("td.trove-new").inner_text() == '"Buy oat milk"'
    assert changes.locator("tr[data-path='tags'] td.trove-new").inner_text() == '["home"]'
    screenshot("event-changes")
    page.click("#previous-version")
    page.wait_for_url(f"**/{data.note.uuid}/versions/1/")
    assert page.locator("#event-changes").count() == 0
