"""``storage-json-file`` shared by separate processes and threads: writers killed with
SIGKILL in the middle of a stream, writers racing to append versions to the same events,
and threads that each open the index."""

import gc
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trove.documents import Event, EventId, SchemaRef
from trove.exceptions import VersionConflict
from trove.query import EventQuery
from trove.storage.jsonfile import DOCUMENT_NAME, JSONFileEventStorage, parse_document

ROOT = Path(__file__).resolve().parents[1]

# Streams writes and prints "<id> <version> <seq>" once each is acknowledged. Every third
# write is a transaction of two documents: a new event and a new version of the last one.
STREAM = """
import sys, uuid
from datetime import UTC, datetime
from trove.documents import Event, EventId, SchemaRef
from trove.storage.jsonfile import JSONFileEventStorage

storage = JSONFileEventStorage(directory=sys.argv[1])
storage.initialize()
previous = None
for seq in range(1_000_000):
    event = Event(EventId(uuid.uuid4(), 1), datetime.now(UTC), SchemaRef("stream"), {"seq": seq})
    if previous is None or seq % 3:
        storage.save_event(event)
        acknowledged = [event]
    else:
        again = previous.with_changes(id=EventId(previous.uuid, previous.version + 1))
        storage.begin_transaction()
        storage.save_events([event, again])
        storage.commit_transaction()
        acknowledged = [event, again]
    for done in acknowledged:
        print(done.uuid, done.version, done.payload["seq"], flush=True)
    previous = event
"""

# Appends versions to the given events, re-reading the latest after each conflict, and
# prints "<id> <version>" for every version it was told it stored.
APPEND = """
import sys, uuid
from trove.documents import EventId
from trove.exceptions import VersionConflict
from trove.storage.jsonfile import JSONFileEventStorage

storage = JSONFileEventStorage(directory=sys.argv[1])
storage.initialize()
writer, ids, rounds = sys.argv[2], [uuid.UUID(i) for i in sys.argv[3].split(",")], int(sys.argv[4])
print("ready", flush=True)
sys.stdin.readline()
for round in range(rounds):
    for event_id in ids:
        while True:
            latest = storage.get_event(event_id)
            version = latest.version + 1
            try:
                storage.save_event(latest.with_changes(
                    id=EventId(event_id, version), payload={"writer": writer, "round": round}
                ))
            except VersionConflict:
                continue
            print(event_id, version, flush=True)
            break
"""


def child(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def event(payload: dict, event_id: uuid.UUID | None = None, version: int = 1) -> Event:
    return Event(
        EventId(event_id or uuid.uuid4(), version), datetime.now(UTC), SchemaRef("s"), payload
    )


@pytest.fixture
def store(tmp_path):
    opened = []

    def open_store() -> JSONFileEventStorage:
        storage = JSONFileEventStorage(directory=str(tmp_path / "store"))
        storage.initialize()
        opened.append(storage)
        return storage

    yield open_store
    for storage in opened:
        storage.shutdown()


def test_every_acknowledged_write_survives_sigkill(store, tmp_path):
    writer = child(STREAM, str(tmp_path / "store"))
    acknowledged = []
    for line in writer.stdout:
        acknowledged.append(line.split())
        if len(acknowledged) >= 60:
            break
    time.sleep(random.uniform(0, 0.005))  # land anywhere in the next commit
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    acknowledged += [line.split() for line in writer.stdout.read().splitlines()]
    writer.stdout.close()

    storage = store()
    for event_id, version, seq in acknowledged:
        stored = storage.get_event(uuid.UUID(event_id), int(version))
        assert stored is not None and stored.payload == {"seq": int(seq)}
        [found] = storage.query_events(EventQuery.parse({"payload": {"seq": int(seq)}}))
        assert str(found.uuid) == event_id and found.version >= int(version)
    new_events = {event_id for event_id, version, _ in acknowledged if version == "1"}
    # At most the one write in flight when the process died comes on top.
    assert len(new_events) <= storage.count_events(EventQuery()) <= len(new_events) + 1
    for path in (tmp_path / "store").rglob("*"):
        assert not path.name.endswith(".tmp")  # a killed write's leftovers are cleared
        match = DOCUMENT_NAME.match(path.name)
        if match:
            parse_document(path.read_bytes(), path, uuid.UUID(match[1]), int(match[2]))


def test_racing_writers_never_duplicate_or_lose_a_version(store, tmp_path):
    storage = store()
    originals = [event({"writer": "setup"}) for _ in range(4)]
    storage.save_events(originals)
    ids = ",".join(str(e.uuid) for e in originals)
    writers = {name: child(APPEND, str(tmp_path / "store"), name, ids, "10") for name in "AB"}
    for process in writers.values():
        assert process.stdout.readline() == "ready\n"
    for process in writers.values():
        process.stdin.write("go\n")
        process.stdin.close()
    acknowledged = {}
    for name, process in writers.items():
        for line in process.stdout:
            event_id, version = line.split()
            assert (event_id, int(version)) not in acknowledged
            acknowledged[(event_id, int(version))] = name
        assert process.wait() == 0
        process.stdout.close()

    assert len(acknowledged) == 2 * 10 * len(originals)
    for original in originals:
        versions = storage.get_versions(original.uuid)
        assert [v.version for v in versions] == list(range(1, 22))
        for stored in versions[1:]:
            assert stored.payload["writer"] == acknowledged[(str(original.uuid), stored.version)]
    latest = storage.query_events(EventQuery.parse({"sort": [{"field": "id"}]}))
    assert [e.version for e in latest] == [21] * len(originals)


def test_the_second_of_two_stores_appending_the_same_version_conflicts(store):
    first, second = store(), store()
    original = event({"n": 1})
    first.save_event(original)
    seen_by_both = second.get_event(original.uuid)
    first.save_event(event({"n": 2}, original.uuid, seen_by_both.version + 1))
    with pytest.raises(VersionConflict):
        second.save_event(event({"n": 3}, original.uuid, seen_by_both.version + 1))
    assert [v.payload for v in second.get_versions(original.uuid)] == [{"n": 1}, {"n": 2}]


def test_threads_that_come_and_go_leave_no_open_index_files(store, tmp_path):
    storage = store()
    storage.save_event(event({"n": 1}))
    index_path = str(tmp_path / "store" / "index.sqlite3")

    def open_index_files() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd).startswith(index_path))

    before = open_index_files()
    for _ in range(20):  # like runserver, a new thread per request
        reader = threading.Thread(target=storage.query_events, args=(EventQuery(),))
        reader.start()
        reader.join()
    gc.collect()
    assert open_index_files() <= before + 3
