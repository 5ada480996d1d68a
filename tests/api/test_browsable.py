"""The browsable API as a logged-in browser user sees it: forms that post, names, texts.

The forms are read off the rendered page and posted back exactly as a browser would
(multipart, with the CSRF token, empty fields included) by a client that enforces CSRF.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

import trove

pytestmark = pytest.mark.django_db(databases="__all__")

BOUNDARY = "----browserFormBoundary7MA4YWxk"


class FormFields(HTMLParser):
    """The fields of the page's multipart form (the serializer form), as a browser posts them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.file_fields: list[str] = []
        self._in_form = False
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("enctype") == "multipart/form-data":
            self._in_form = True
        elif self._in_form and tag == "input" and attrs.get("name"):
            if attrs.get("type") == "file":
                self.file_fields.append(attrs["name"])
            else:
                self.fields[attrs["name"]] = attrs.get("value") or ""
        elif self._in_form and tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False


def browser(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("browser", password="browser-Pass-9")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def form_of(client: Client, path: str) -> FormFields:
    page = client.get(path, HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    form = FormFields()
    form.feed(page.content.decode())
    assert "csrfmiddlewaretoken" in form.fields, "no form on the page"
    return form


def submit(client: Client, path: str, form: FormFields, files: dict[str, SimpleUploadedFile]):
    """The form posted as a browser does: every field, and for a file input left empty a
    part with an empty file name (which Django's test client cannot make)."""
    lines = []
    for name, value in form.fields.items():
        lines += [f"--{BOUNDARY}", f'Content-Disposition: form-data; name="{name}"', "", value]
    body = "\r\n".join(lines).encode()
    for name in form.file_fields:
        upload = files.get(name)
        filename, content_type = (upload.name, upload.content_type) if upload else ("", "")
        head = (
            f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type or "application/octet-stream"}'
            "\r\n\r\n"
        )
        body += head.encode() + (upload.read() if upload else b"")
    body += f"\r\n--{BOUNDARY}--\r\n".encode()
    return client.post(
        path,
        body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        HTTP_ACCEPT="text/html",
    )


def test_the_create_form_stores_an_event_with_its_file(memory, django_user_model):
    client = browser(django_user_model)
    form = form_of(client, "/api/events/")
    assert form.file_fields == ["file"]
    form.fields["schema"] = "note.created"
    form.fields["payload"] = '{"text": "from the form"}'
    upload = SimpleUploadedFile("hello.txt", b"hello", content_type="text/plain")
    response = submit(client, "/api/events/", form, {"file": upload})
    assert response.status_code == 201, response.content.decode().split("response-info")[1][:1500]
    (event,) = trove.query_events({"schema": "note.created"})
    assert event.payload == {"text": "from the form"}
    assert event.metadata == {} and event.links == ()
    assert [(f.filename, f.size) for f in event.files] == [("hello.txt", 5)]


def test_the_create_form_without_a_file_stores_an_event_without_files(memory, django_user_model):
    client = browser(django_user_model)
    form = form_of(client, "/api/events/")
    form.fields.update(schema="note.created", payload='{"text": "no file"}', producer="desk")
    response = submit(client, "/api/events/", form, {})
    assert response.status_code == 201, response.content.decode().split("response-info")[1][:1500]
    (event,) = trove.query_events({"schema": "note.created"})
    assert (event.producer, event.files) == ("desk", ())


def test_the_version_form_appends_a_version_with_a_file(memory, django_user_model):
    client = browser(django_user_model)
    event = trove.create_event("note.created", {"text": "v1"}, metadata={"k": 1})
    path = f"/api/events/{event.uuid}/versions/"
    form = form_of(client, path)
    assert "expectedVersion" in form.fields
    form.fields["payload"] = '{"text": "v2"}'
    form.fields["expectedVersion"] = "1"
    upload = SimpleUploadedFile("v2.bin", b"\x00\xff", content_type="application/octet-stream")
    response = submit(client, path, form, {"file": upload})
    assert response.status_code == 201, response.content.decode().split("response-info")[1][:1500]
    latest = trove.get_event(event.uuid)
    assert (latest.version, latest.payload, latest.schema.id) == (2, {"text": "v2"}, "note.created")
    assert [f.filename for f in latest.files] == ["v2.bin"]


def test_a_form_post_without_the_csrf_token_is_refused(memory, django_user_model):
    client = browser(django_user_model)
    form = form_of(client, "/api/events/")
    del form.fields["csrfmiddlewaretoken"]
    form.fields.update(schema="note.created", payload="{}")
    response = submit(client, "/api/events/", form, {})
    assert response.status_code == 403
    assert trove.query_events({}) == []


def test_the_raw_json_form_starts_with_a_body_the_api_takes(memory, django_user_model):
    client = browser(django_user_model)
    page = client.get("/api/events/", HTTP_ACCEPT="text/html").content.decode()
    assert "&quot;file&quot;" not in page and "&quot;producer&quot;" not in page


@pytest.mark.parametrize(
    ("path", "crumbs"),
    [
        ("/api/events/", ["Api Root", "Events"]),
        ("/api/events/{id}/", ["Api Root", "Events", "Event"]),
        ("/api/events/{id}/versions/", ["Api Root", "Events", "Event", "Versions"]),
    ],
)
def test_breadcrumbs_name_events(memory, django_user_model, path, crumbs):
    client = browser(django_user_model)
    event = trove.create_event("note.created", {})
    page = client.get(path.format(id=event.uuid), HTTP_ACCEPT="text/html").content.decode()
    breadcrumb = page[page.index('<ul class="breadcrumb">') :]
    breadcrumb = breadcrumb[: breadcrumb.index("</ul>")]
    names = [text.strip() for text in re.findall(r">([^<>]+)<", breadcrumb) if text.strip()]
    assert names == crumbs


@pytest.mark.parametrize(
    "path",
    ["/api/", "/api/events/", "/api/query/", "/api/schemas/", "/api/feed/", "/api/health/"],
)
def test_descriptions_are_for_users(memory, django_user_model, path):
    client = browser(django_user_model)
    page = client.get(path, HTTP_ACCEPT="text/html").content.decode()
    description = page[page.index('<div class="pull-left">') :]
    description = description[: description.index("</div>")]
    assert "<p>" in description, "no description"
    assert "SPEC" not in description and "``" not in description


def test_the_ordering_help_keeps_payload_path(memory, django_user_model):
    client = browser(django_user_model)
    page = client.get("/api/events/", HTTP_ACCEPT="text/html").content.decode()
    assert "payload.&lt;path&gt;; prefix" in page
