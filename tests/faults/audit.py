"""What a store holds after a fault, checked from outside: through the REST API of a
running server and by listing the file storage's objects directly.

The rule for bytes without an event (``unexplained_objects``):

1. Every file record of every stored event exists as a record object, with its marker
   and its blob, and the blob's bytes hash to the record's hash (read through the API).
2. A record, marker or blob that no stored event's file record holds is an *orphan*.
3. After a clean failure (the server stayed up: an outage, a full disk) no orphan is
   explainable: the write that failed must have removed what it stored.
4. After a kill, an orphan is explainable only if no acknowledged event is missing, its
   content hash is the hash of a file carried by a request that was in flight (sent, never
   answered) when the server died, and there are no more orphan records than such files.
   The same holds for spool files left in a file-system store's ``incoming/`` directory.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from trove.storage.jsonfile import DOCUMENT_NAME, parse_document


@dataclass
class FileObjects:
    """The objects of a file storage, by kind."""

    blobs: dict[str, int] = field(default_factory=dict)  # "sha256:<hex>" -> size
    records: dict[uuid.UUID, str | None] = field(default_factory=dict)  # id -> hash
    markers: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    spools: list[str] = field(default_factory=list)


def _classify(objects: FileObjects, name: str, size: int, read: Any) -> None:
    parts = name.split("/")
    if parts[0] == "blobs" and len(parts) == 4:
        objects.blobs[f"sha256:{parts[3]}"] = size
    elif parts[0] == "records" and len(parts) == 3 and parts[2].endswith(".json"):
        try:
            hash_ = json.loads(read()).get("hash")
        except ValueError:  # cut short: it can never match a stored event's record
            hash_ = "unreadable"
        objects.records[uuid.UUID(parts[2][: -len(".json")])] = hash_
    elif parts[0] == "refs" and len(parts) == 5:
        objects.markers.add((f"sha256:{parts[3]}", uuid.UUID(parts[4])))
    elif parts[0] == "incoming":
        objects.spools.append(name)
    else:
        raise AssertionError(f"An object the file storage does not make: {name}")


def list_file_objects(files_role: dict[str, Any], s3_client: Any = None) -> FileObjects:
    """Every object of the ``files`` role (``storage-file-system`` or ``storage-s3``)."""
    objects = FileObjects()
    options = files_role["options"]
    if files_role["plugin"] == "storage-file-system":
        root = Path(options["directory"])
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file():
                name = path.relative_to(root).as_posix()
                _classify(objects, name, path.stat().st_size, path.read_bytes)
        return objects
    prefix = options["prefix"] + "/"
    pages = s3_client.get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=options["bucket"], Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]

            def read(key: str = key) -> bytes:
                return s3_client.get_object(Bucket=options["bucket"], Key=key)["Body"].read()

            _classify(objects, key[len(prefix) :], item["Size"], read)
    return objects


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Findings:
    """What an audit found: acknowledged events checked and lost, and every problem."""

    checked: int = 0
    lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stored: dict[str, dict] = field(default_factory=dict)  # id -> latest document


def _same_event(stored: dict, expected: dict) -> list[str]:
    differences = []
    for key in ("payload", "producer", "metadata"):
        if stored.get(key) != expected.get(key):
            differences.append(key)
    if stored["schema"]["id"] != expected["schema"]["id"]:
        differences.append("schema")
    stored_files = [(f["id"], f["hash"], f["size"]) for f in stored["files"]]
    if stored_files != [(f["id"], f["hash"], f["size"]) for f in expected["files"]]:
        differences.append("files")
    links = [(x["type"], x["targetEvent"]["id"]) for x in stored["links"]]
    if links != [(x["type"], x["targetEvent"]["id"]) for x in expected["links"]]:
        differences.append("links")
    return differences


class StoreAudit:
    """Reads a store through a server's REST API."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=60)

    def all_latest(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        offset = 0
        while True:
            page = self.get(f"/api/events/?limit=1000&offset={offset}")
            assert page.status_code == 200, page.text
            results = page.json()["results"]
            found.update((doc["id"]["id"], doc) for doc in results)
            if len(results) < 1000:
                return found
            offset += 1000

    def file_problems(self, document: dict) -> list[str]:
        """Every file of ``document`` is there and its bytes hash as recorded."""
        problems = []
        for record in document["files"]:
            response = self.get(f"/api/files/{record['id']}/content/")
            if response.status_code != 200:
                problems.append(f"file {record['id']}: {response.status_code}")
            elif digest(response.content) != record["hash"]:
                problems.append(f"file {record['id']}: bytes do not match {record['hash']}")
        return problems

    def audit(self, acknowledged: dict[str, dict], unanswered: dict[str, dict]) -> Findings:
        """Check every acknowledged document (id -> the 201 response's document) and every
        stored event; ``unanswered`` maps a payload's JSON to the request that carried it
        and never got an answer, with its file ``digests``."""
        findings = Findings()
        for event_id, expected in acknowledged.items():
            findings.checked += 1
            version = expected["id"]["version"]
            response = self.get(f"/api/events/{event_id}/versions/{version}/")
            if response.status_code != 200:
                findings.lost.append(f"{event_id} v{version}: {response.status_code}")
                continue
            differences = _same_event(response.json(), expected)
            if differences:
                findings.lost.append(f"{event_id} v{version}: differs in {differences}")
        findings.stored = self.all_latest()
        for event_id, document in findings.stored.items():
            problems = self.file_problems(document)
            if event_id in acknowledged and problems:
                findings.lost.append(f"{event_id}: {problems}")
            findings.problems += problems
            for link in document["links"]:
                if link["targetEvent"]["id"] not in findings.stored:
                    findings.problems.append(f"{event_id} links to a missing event")
            if event_id in acknowledged:
                continue
            sent = unanswered.get(json.dumps(document["payload"], sort_keys=True))
            if sent is None:
                findings.problems.append(f"{event_id} was stored but never sent or answered")
            elif [f["hash"] for f in document["files"]] != sent["digests"]:
                findings.problems.append(f"{event_id} was stored without all its files")
        findings.problems += self.backlink_problems(findings.stored)
        return findings

    def backlink_problems(self, stored: dict[str, dict]) -> list[str]:
        """Links are found from both ends: each target's backlinks are its sources."""
        sources: dict[str, set[str]] = {}
        for event_id, document in stored.items():
            for link in document["links"]:
                sources.setdefault(link["targetEvent"]["id"], set()).add(event_id)
        problems = []
        for target, expected in sources.items():
            response = self.get(f"/api/events/{target}/backlinks/")
            found = {doc["id"]["id"] for doc in response.json()} if response.ok else set()
            if found != expected:
                problems.append(f"backlinks of {target}: {len(found)} of {len(expected)}")
        return problems


def referenced_files(stored: dict[str, dict]) -> dict[uuid.UUID, str]:
    return {
        uuid.UUID(record["id"]): record["hash"]
        for document in stored.values()
        for record in document["files"]
        if not record.get("isReference")
    }


def unexplained_objects(
    objects: FileObjects,
    stored: dict[str, dict],
    *,
    killed: bool,
    lost: int,
    in_flight_digests: list[str],
) -> list[str]:
    """The objects the module docstring's rule cannot explain (empty when all is well)."""
    referenced = referenced_files(stored)
    problems = []
    for file_id, hash_ in referenced.items():
        if objects.records.get(file_id) != hash_:
            problems.append(f"file {file_id} of a stored event has no record")
        if (hash_, file_id) not in objects.markers:
            problems.append(f"file {file_id} of a stored event has no marker")
        if hash_ not in objects.blobs:
            problems.append(f"file {file_id} of a stored event has no bytes ({hash_})")
    held = set(referenced.values())
    orphans = [
        *(("record", h) for i, h in objects.records.items() if i not in referenced),
        *(("marker", h) for h, i in objects.markers if i not in referenced),
        *(("blob", h) for h in objects.blobs if h not in held),
    ]
    explainable = set(in_flight_digests) if killed and not lost else set()
    for kind, hash_ in orphans:
        if hash_ not in explainable:
            problems.append(f"orphan {kind} {hash_}")
    orphan_records = sum(1 for kind, _ in orphans if kind == "record")
    if orphan_records > len(in_flight_digests if killed else []):
        problems.append(f"{orphan_records} orphan records, more than the files in flight")
    if len(objects.spools) > (len(in_flight_digests) if killed and not lost else 0):
        problems.append(f"spool files left behind: {objects.spools}")
    return problems


def json_directory_problems(directory: Path) -> list[str]:
    """Documents of a ``storage-json-file`` directory that are unreadable or half-written."""
    problems = []
    for path in directory.rglob("*"):
        if path.name.endswith(".tmp"):
            problems.append(f"left-over temporary file {path}")
        match = DOCUMENT_NAME.match(path.name)
        if match:
            try:
                parse_document(path.read_bytes(), path, uuid.UUID(match[1]), int(match[2]))
            except Exception as error:  # any failure to read is what this looks for
                problems.append(f"{path}: {error}")
    return problems
