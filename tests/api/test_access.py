"""Who may read and write, with the authentication schemes a client would use, and the
browsable API a signed-in developer sees."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import trove

from .conftest import user_with

pytestmark = pytest.mark.django_db

EVENT = {"schema": "note.created", "payload": {"text": "hi"}}


def basic(username: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{username}-password".encode()).decode()


def test_anonymous_users_may_not_read_by_default(memory):
    client = APIClient()
    for response in (client.get("/api/events/"), client.post("/api/query/", {}, format="json")):
        assert response.status_code in (401, 403)
        assert response.json()["error"]["code"] == "not_authenticated"


def test_anonymous_reads_are_a_setting_and_never_allow_writes(memory, settings):
    event = trove.create_event("note.created", {"text": "public"})
    settings.TROVE = {**settings.TROVE, "anonymous_read": True}
    client = APIClient()
    assert client.get(f"/api/events/{event.uuid}/").json()["payload"] == {"text": "public"}
    assert client.post("/api/query/", {}, format="json").json()["count"] == 1
    assert client.post("/api/events/", EVENT, format="json").status_code in (401, 403)


def test_writing_needs_the_add_permission(memory, reader, writer):
    assert reader.get("/api/events/").status_code == 200
    refused = reader.post("/api/events/", EVENT, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")
    assert reader.post("/api/query/", {}, format="json").status_code == 200
    assert writer.post("/api/events/", EVENT, format="json").status_code == 201
    schema = {"id": "s", "version": "1", "schema": {"type": "object"}}
    assert reader.post("/api/schemas/", schema, format="json").status_code == 403
    assert trove.count_events() == 1


def test_basic_and_token_authentication(memory, django_user_model):
    user = user_with(django_user_model, "client", "add_event")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("client"))
    assert client.post("/api/events/", EVENT, format="json").status_code == 201
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/events/").json()["count"] == 1
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    refused = client.get("/api/events/")
    # 403 rather than 401: DRF answers 401 only when the first authentication class
    # (here SessionAuthentication) can send a challenge.
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "authentication_failed")


def test_permissions_from_groups_count_and_a_revoked_one_applies_to_the_next_request(
    memory, django_user_model
):
    user = user_with(django_user_model, "client")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.post("/api/events/", EVENT, format="json").status_code == 403
    editors = Group.objects.create(name="editors")
    editors.permissions.add(Permission.objects.get(codename="add_event"))
    user.groups.add(editors)
    assert client.post("/api/events/", EVENT, format="json").status_code == 201
    editors.permissions.clear()
    assert client.post("/api/events/", EVENT, format="json").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    assert client.post("/api/events/", EVENT, format="json").status_code == 201
    user.user_permissions.clear()
    assert client.post("/api/events/", EVENT, format="json").status_code == 403
    assert trove.count_events() == 2


def test_a_revoked_permission_applies_even_to_a_user_signed_in_for_good(memory, writer):
    """``force_authenticate`` keeps one user object for every request, as a long-lived
    session would; Django caches permissions on that object, Trove must not."""
    assert writer.post("/api/events/", EVENT, format="json").status_code == 201
    writer.handler._force_user.user_permissions.clear()
    assert writer.post("/api/events/", EVENT, format="json").status_code == 403


def test_superusers_may_write_and_deactivated_users_may_not(memory, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", password="admin-password")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("admin"))
    assert client.post("/api/events/", EVENT, format="json").status_code == 201
    schema = {"id": "s", "version": "1", "schema": {"type": "object"}}
    assert client.post("/api/schemas/", schema, format="json").status_code == 201
    former = user_with(django_user_model, "former", "add_event")
    former.is_active = False
    former.save()
    forced = APIClient()
    forced.force_authenticate(former)
    assert forced.post("/api/events/", EVENT, format="json").status_code == 403
    assert admin.is_superuser and trove.count_events() == 1


def test_other_authentication_backends_still_decide(memory, settings, django_user_model):
    settings.AUTHENTICATION_BACKENDS = ["tests.api.test_access.EventsOnWeekdays"]
    client = APIClient()
    client.force_authenticate(user_with(django_user_model, "client", "add_event"))
    EventsOnWeekdays.allowed = False
    assert client.post("/api/events/", EVENT, format="json").status_code == 403
    EventsOnWeekdays.allowed = True
    assert client.post("/api/events/", EVENT, format="json").status_code == 201


class EventsOnWeekdays:
    """An authentication backend whose answer is not in the permission tables."""

    allowed = False

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user, permission, obj=None):
        return self.allowed and permission == "trove.add_event"


def test_a_deleted_token_or_deactivated_user_is_refused_on_the_next_request(
    memory, django_user_model
):
    user = user_with(django_user_model, "client", "add_event")
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.post("/api/events/", EVENT, format="json").status_code == 201
    user.is_active = False
    user.save()
    refused = client.get("/api/events/")
    assert (refused.status_code, refused.json()["error"]["message"]) == (
        403,
        "User inactive or deleted.",
    )
    user.is_active = True
    user.save()
    assert client.get("/api/events/").status_code == 200
    token.delete()
    refused = client.get("/api/events/")
    assert (refused.status_code, refused.json()["error"]["message"]) == (403, "Invalid token.")


def test_session_writes_need_the_csrf_token(memory, django_user_model):
    user_with(django_user_model, "browser", "add_event")
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="browser", password="browser-password")
    response = client.post("/api/events/", EVENT, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_producer_can_be_bound_to_the_user(memory, settings, writer):
    settings.TROVE = {**settings.TROVE, "bind_producer_to_user": True}
    created = writer.post("/api/events/", EVENT, format="json").json()
    assert created["producer"] == "writer"
    assert (
        writer.post("/api/events/", {**EVENT, "producer": "writer"}, format="json").status_code
        == 201
    )
    other = writer.post("/api/events/", {**EVENT, "producer": "billing"}, format="json")
    assert (other.status_code, other.json()["error"]["code"]) == (403, "producer_mismatch")
    batch = writer.post("/api/events/", [EVENT, {**EVENT, "producer": "billing"}], format="json")
    assert batch.status_code == 403
    appended = writer.post(
        f"/api/events/{created['id']['id']}/versions/", {"payload": {}}, format="json"
    )
    assert appended.json()["producer"] == "writer"
    assert trove.count_events() == 2


def test_the_browsable_api_shows_events_and_the_filter_form(memory, django_user_model):
    event = trove.create_event("note.created", {"text": "browsable"}, producer="web")
    user_with(django_user_model, "developer")
    client = APIClient()
    assert client.login(username="developer", password="developer-password")
    response = client.get(
        "/api/events/?schema=note.created&payload.text=browsable", HTTP_ACCEPT="text/html"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert str(event.uuid) in page
    for name in ("schema", "producer", "start", "end", "link_type", "link_target", "ordering"):
        assert f'name="{name}"' in page, name
    assert 'name="schema" value="note.created"' in page
    assert 'name="payload.text" value="browsable"' in page


def test_the_browsable_api_form_creates_an_event(memory, django_user_model):
    """The HTML form posts every field, the empty ones included."""
    user_with(django_user_model, "developer", "add_event")
    client = APIClient()
    assert client.login(username="developer", password="developer-password")
    form = {
        "id": "",
        "schema": "note.created",
        "payload": '{"text": "typed"}',
        "producer": "",
        "metadata": "",
    }
    response = client.post("/api/events/", form, format="multipart")
    assert response.status_code == 201, response.content
    assert (response.json()["payload"], response.json()["producer"]) == ({"text": "typed"}, "core")


def test_the_api_root_lists_the_endpoints(memory):
    links = APIClient().get("/api/").json()
    assert {"events", "query", "schemas", "openapi", "docs"} <= set(links)


def test_token_authentication_loads_the_user_as_the_orm_does(memory, django_user_model):
    from django.forms.models import model_to_dict

    from trove.api.authentication import TokenAuthentication

    user = user_with(django_user_model, "client", "add_event")
    token = Token.objects.create(user=user)
    authenticated, loaded_token = TokenAuthentication().authenticate_credentials(token.key)
    stored = django_user_model.objects.get(pk=user.pk)
    assert model_to_dict(authenticated) == model_to_dict(stored)
    assert authenticated.date_joined == stored.date_joined and authenticated.is_superuser is False
    assert (loaded_token.key, loaded_token.user, loaded_token.created) == (
        token.key,
        stored,
        token.created,
    )
