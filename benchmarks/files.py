"""Large files through Trove against the raw tools: peak memory (RSS) and throughput.

One file of random bytes (256 MB quick, 1 GB full) is uploaded and downloaded

- on S3 (a SeaweedFS server started for the run): through Trove
  (``trove.create_event(..., files=[NewFile(open(path, "rb"))])`` then ``trove.open_file``
  read in chunks) against boto3 directly (``upload_file`` / ``download_fileobj``), both
  with boto3's default ``TransferConfig`` (multipart above 8 MiB, 8 MiB parts, 10 threads);
- on the local file system: through Trove (``storage-file-system``) against a raw
  chunked file copy made as durable as Trove makes its files (``fsync`` of the file and of
  its directory), and a raw chunked read.

Each transfer runs in a child process of its own, so that its peak RSS (``VmHWM``)
belongs to that transfer alone; "RSS growth" is that peak minus the RSS just before the
transfer began, which leaves out what importing Django or boto3 costs. Trove's upload
figure includes reading the source, hashing the bytes and spooling them to a temporary
file. Trove and its reference run in alternation for :data:`ROUNDS` rounds (the order
swapped every round), each round into a fresh directory, prefix or key, so that no upload
finds its bytes already stored; every figure is the median of its rounds.

Every transfer starts from the same state of the machine: no dirty pages of an earlier
one (``sync`` before each child), and, for uploads, free memory the page cache can take
at once (:func:`_warm_free_memory`): on a virtual machine that hands freed memory back to
its host, the first touch of such memory costs more than the copy itself, and which of
two transfers paid for it was luck.

Run it with the benchmark runner, or alone: ``python -m benchmarks.files [--full]``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUCKET = "trove-bench"
CHUNK = 1024 * 1024
#: Rounds of every transfer and its reference (fewer in full mode: 1 GB takes a while).
ROUNDS = {False: 5, True: 3}
ROOT = Path(__file__).resolve().parent.parent

#: (store, direction) → (Trove's scenario, the reference scenario, how the reference is named)
COMPARISONS = {
    ("S3 (SeaweedFS)", "upload"): ("trove-s3-upload", "boto3-upload", "boto3 upload_file"),
    ("S3 (SeaweedFS)", "download"): (
        "trove-s3-download",
        "boto3-download",
        "boto3 download_fileobj",
    ),
    ("file system", "upload"): ("trove-fs-upload", "copy-upload", "raw file copy + fsync"),
    ("file system", "download"): ("trove-fs-download", "copy-download", "raw file read"),
}


def run(full: bool) -> list[dict[str, Any]]:
    """Measure every scenario, each in a child process, and compare Trove with its reference."""
    from trove.testing.seaweedfs import SeaweedFSServer

    size_mb = 1024 if full else 256
    with tempfile.TemporaryDirectory(prefix="trove-bench-files-") as work, SeaweedFSServer() as s3:
        s3.create_bucket(BUCKET)
        source = Path(work) / "source.bin"
        with open(source, "wb") as handle:
            for _ in range(size_mb):
                handle.write(os.urandom(CHUNK))
            # On disk before the first figure: its write-back must not land in a measurement.
            handle.flush()
            os.fsync(handle.fileno())
        common = {
            "source": str(source),
            "work": work,
            "s3": {
                "endpoint": s3.endpoint_url,
                "access_key": s3.access_key,
                "secret_key": s3.secret_key,
                "region": s3.region,
            },
        }
        results: dict[str, list[dict[str, Any]]] = {}
        for round_ in range(ROUNDS[full]):
            for trove_scenario, reference_scenario, _ in COMPARISONS.values():
                pair = (reference_scenario, trove_scenario)
                for scenario in pair if round_ % 2 == 0 else reversed(pair):
                    upload = results.get(scenario.replace("download", "upload"), [{}])[-1]
                    results.setdefault(scenario, []).append(
                        _in_child(
                            {
                                **common,
                                "scenario": scenario,
                                "round": round_,
                                "file_id": upload.get("file_id"),
                            }
                        )
                    )
            _remove_round(work, s3, round_)
    rows = []
    for (store, direction), (trove_scenario, reference_scenario, reference) in COMPARISONS.items():
        ours, theirs = results[trove_scenario], results[reference_scenario]
        label = f"files: {direction} {size_mb} MB, {store}"
        for metric, unit, value in (
            ("throughput", "MB/s", lambda r: size_mb / r["seconds"]),
            ("peak RSS", "MB", lambda r: r["peak_rss_mb"]),
            ("RSS growth", "MB", lambda r: r["peak_rss_mb"] - r["rss_before_mb"]),
        ):
            rows.append(
                {
                    "name": f"{label}: {metric}",
                    "value": round(statistics.median(map(value, ours)), 1),
                    "unit": unit,
                    "reference": reference,
                    "reference_value": round(statistics.median(map(value, theirs)), 1),
                }
            )
    return rows


def _remove_round(work: str, s3: Any, round_: int) -> None:
    """Delete what a round stored, so that a full run does not hold gigabytes of copies."""
    shutil.rmtree(Path(work) / f"trove-files-{round_}", ignore_errors=True)
    (Path(work) / f"copy-{round_}.bin").unlink(missing_ok=True)
    client = s3.client()
    for prefix in (f"trove-{round_}/", f"boto3/{round_}."):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=BUCKET, Key=item["Key"])


def _in_child(spec: dict[str, Any]) -> dict[str, Any]:
    os.sync()  # the write-back of what ran before must not land in this measurement
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.files", "--child", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"Scenario {spec['scenario']} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# In the child process ----------------------------------------------------------------


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _setup_trove(files: dict[str, Any]) -> None:
    """Configure a minimal Django project: events in memory, files where ``files`` says."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(
        INSTALLED_APPS=["trove"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
        TROVE={"storage": {"events": {"plugin": "storage-memory"}, "files": files}},
    )
    django.setup()
    call_command("migrate", verbosity=0)


def _s3_client(s3: dict[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=s3["secret_key"],
        region_name=s3["region"],
        config=Config(s3={"addressing_style": "path"}),
    )


def _peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM`` on Linux: ``ru_maxrss`` would also count the
    parent's memory, which a child inherits across ``fork`` and keeps through ``exec``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 2**20 if sys.platform == "darwin" else 2**10  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def _warm_free_memory(directory: str, size: int) -> None:
    """Write and delete a scratch file of twice ``size`` bytes, never flushed: memory the
    kernel can hand to the upload's page cache (and the S3 server's) without delay.

    A virtual machine with free page reporting (``virtio_balloon``, Firecracker) returns
    memory free for a few seconds to its host, and the next touch of each page faults into
    the host: 256 MB then take 0.4-0.6 s to write instead of 0.05 s, on either side of a
    comparison, by the luck of what ran just before. Pages freed a moment ago are the
    first the kernel hands out again and are not yet returned. Twice the size covers Trove's
    spool as well as the stored bytes."""
    scratch = os.path.join(directory, f"warm-{os.getpid()}.bin")
    zeros = bytes(CHUNK)
    with open(scratch, "wb") as handle:
        for _ in range(2 * size // CHUNK + 1):
            handle.write(zeros)
    os.unlink(scratch)


def _drain(stream: Any) -> None:
    while stream.read(CHUNK):
        pass


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    scenario, source, s3 = spec["scenario"], spec["source"], spec["s3"]
    if scenario.startswith("trove-"):
        if "-s3-" in scenario:
            files = {
                "plugin": "storage-s3",
                "options": {
                    "bucket": BUCKET,
                    "region": s3["region"],
                    "endpointUrl": s3["endpoint"],
                    "accessKeyId": s3["access_key"],
                    "secretAccessKey": s3["secret_key"],
                    "prefix": f"trove-{spec['round']}",
                },
            }
        else:
            directory = os.path.join(spec["work"], f"trove-files-{spec['round']}")
            files = {"plugin": "storage-file-system", "options": {"directory": directory}}
        _setup_trove(files)
        import trove
        from trove.storage.handler import storages

        # Built before measuring, as the boto3 client is: loading boto3 is no transfer.
        getattr(storages.files, "client", None)
        # Nor is importing Trove: its top-level names import their modules when first
        # looked up, which without bytecode files (PYTHONDONTWRITEBYTECODE) means
        # compiling them, ~7 ms; and the event storage is built on first use.
        create_event, open_file, new_file = trove.create_event, trove.open_file, trove.NewFile
        storages.events  # noqa: B018 - built here, not in the first write
    elif scenario.startswith("boto3-"):
        client = _s3_client(s3)
    key, copy = f"boto3/{spec['round']}.bin", Path(spec["work"]) / f"copy-{spec['round']}.bin"
    if scenario.endswith("-upload"):
        _warm_free_memory(spec["work"], os.path.getsize(source))
    result: dict[str, Any] = {"rss_before_mb": _rss_mb()}
    started = time.perf_counter()
    if scenario.endswith("-upload") and scenario.startswith("trove-"):
        with open(source, "rb") as handle:
            event = create_event(
                "bench.file", {}, files=[new_file(handle, "application/octet-stream")]
            )
        result["file_id"] = str(event.files[0].id)
    elif scenario.startswith("trove-"):
        with open_file(spec["file_id"]) as stream:
            _drain(stream)
    elif scenario == "boto3-upload":
        client.upload_file(source, BUCKET, key)
    elif scenario == "boto3-download":
        with open(os.devnull, "wb") as sink:
            client.download_fileobj(BUCKET, key, sink)
    elif scenario == "copy-upload":
        with open(source, "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        directory = os.open(copy.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    elif scenario == "copy-download":
        with open(copy, "rb") as stream:
            _drain(stream)
    else:
        raise ValueError(f"Unknown scenario {scenario!r}.")
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(json.loads(sys.argv[2]))))
    else:
        for row in run(full="--full" in sys.argv[1:]):
            print(
                f"{row['name']:<55} {row['value']:>8} {row['unit']:<5}"
                f"  {row['reference']}: {row['reference_value']}"
            )
