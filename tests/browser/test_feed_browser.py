"""The EventSource example of docs/following.md in Chromium: a signed-in page follows
``/api/feed/stream/`` and gets versions as they commit; when the server ends the stream
(its ``timeout``), the browser reconnects by itself with ``Last-Event-ID`` and gets
exactly the version committed while it was away, none of the earlier ones again."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

import trove
from trove.storage.handler import storages

pytestmark = pytest.mark.django_db(transaction=True)

FOLLOW = """(after) => {
    window.received = []; window.opened = 0; window.dropped = 0;
    const query = `schema=order.placed&timeout=2&after=${after}`;
    const source = new EventSource(`/api/feed/stream/?${query}`);
    source.onopen = () => { window.opened += 1; };
    source.onerror = () => { window.dropped += 1; };
    source.addEventListener("order.placed", (message) => {
        const event = JSON.parse(message.data);
        window.received.push([message.lastEventId, event.position, event.payload.n]);
    });
}"""


@pytest.fixture
def user(browser, settings) -> User:
    settings.TROVE = {
        "storage": {"events": {"plugin": "storage-memory"}, "files": {"plugin": "storage-memory"}}
    }
    storages.close_all()
    yield User.objects.create_user("follower", password="follow-Pass-9")
    storages.close_all()


def test_event_source_follows_the_feed_and_resumes_by_itself(page, user):
    page.goto("/api/auth/login/?next=/api/")
    page.fill("#id_username", "follower")
    page.fill("#id_password", "follow-Pass-9")
    page.click("input[type=submit]")
    page.wait_for_url("**/api/")
    start = trove.create_event("order.placed", {"n": 0})
    page.evaluate(FOLLOW, start.position)
    page.wait_for_function("window.opened >= 1")
    live = [trove.create_event("order.placed", {"n": n}) for n in (1, 2)]
    trove.create_event("other", {"n": -1})
    page.wait_for_function("window.received.length >= 2")
    page.wait_for_function("window.dropped >= 1")  # the server ended the stream
    missed = trove.create_event("order.placed", {"n": 3})  # before the browser is back
    page.wait_for_function("window.opened >= 2")
    page.wait_for_function("window.received.length >= 3")
    received = page.evaluate("window.received")
    expected = [(live[0], 1), (live[1], 2), (missed, 3)]
    assert received == [[str(e.position), e.position, n] for e, n in expected]
