"""The browsable REST API in Chromium: a logged-in user creates an event with a file
through the HTML form on ``/api/events/``, then appends a version through the form on
``/versions/``, and sees 201 each time."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

import trove
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def user(browser, settings, tmp_path) -> User:
    settings.TROVE = {
        "storage": {
            "events": {"plugin": "storage-orm"},
            "files": {
                "plugin": "storage-file-system",
                "options": {"directory": str(tmp_path / "files")},
            },
        }
    }
    yield User.objects.create_superuser("api-user", password="api-Pass-9")
    storages.close_all()


def submit_html_form(page, fields: dict[str, str], upload) -> None:
    from playwright.sync_api import expect

    page.click("a[href='#post-object-form']")
    form = page.locator("#post-object-form form")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("input[name=file]").set_input_files(upload)
    form.locator("button", has_text="POST").click()
    expect(page.locator(".response-info")).to_contain_text("HTTP 201 Created")


def test_create_an_event_and_a_version_with_files_through_the_forms(
    page, user, tmp_path, screenshot
):
    page.goto("/api/auth/login/?next=/api/events/")
    page.fill("#id_username", "api-user")
    page.fill("#id_password", "api-Pass-9")
    page.click("input[type=submit]")
    page.wait_for_url("**/api/events/")
    assert page.locator(".breadcrumb").inner_text().split() == ["Api", "Root", "Events"]

    report = tmp_path / "report.txt"
    report.write_text("annual report")
    submit_html_form(
        page,
        {"schema": "document.uploaded", "payload": '{"title": "Annual Report"}'},
        str(report),
    )
    screenshot("api-created")
    (event,) = trove.query_events({"schema": "document.uploaded"})
    assert event.payload == {"title": "Annual Report"}
    assert [(f.filename, f.size) for f in event.files] == [("report.txt", 13)]

    page.goto(f"/api/events/{event.uuid}/versions/")
    appendix = tmp_path / "appendix.txt"
    appendix.write_text("appendix")
    submit_html_form(
        page,
        {"payload": '{"title": "Annual Report, final"}', "expectedVersion": "1"},
        str(appendix),
    )
    screenshot("api-appended")
    latest = trove.get_event(event.uuid)
    assert (latest.version, latest.payload["title"]) == (2, "Annual Report, final")
    assert sorted(f.filename for f in latest.files) == ["appendix.txt", "report.txt"]
