"""What ``python -m benchmarks`` shows while it runs and what it writes to latest.json:
progress lines per area and per round, and figures whose ``key`` stays the same across
runs and sizes."""

from __future__ import annotations

import json
import types

from benchmarks import __main__ as runner
from benchmarks import progress
from benchmarks.measure import alternating
from benchmarks.report import Figure, derived_key, figure, unique_keys, write_json


def test_a_key_leaves_sizes_out_and_keeps_the_words():
    quick = derived_key("ingest", "ingest batch of 5,000, storage-sqlite", "sqlite3 executemany")
    full = derived_key("ingest", "ingest batch of 50,000, storage-sqlite", "sqlite3 executemany")
    assert quick == full == "ingest.ingest-batch-of-storage-sqlite.sqlite3-executemany"
    assert derived_key("files", "1 GB upload", "boto3") != derived_key(
        "files", "1 GB upload", "raw"
    )


def test_a_module_may_name_its_figure_and_repeated_keys_get_a_suffix():
    named = Figure.from_dict(figure("a", 2, "ms", "b", 4, key="area.mine"), "area")
    assert (named.key, named.ratio) == ("area.mine", 0.5)
    twice = [Figure.from_dict(figure("x 1", 1, "ms", "y", 1), "area") for _ in range(3)]
    assert [f.key for f in unique_keys(twice)] == ["area.x.y", "area.x.y-2", "area.x.y-3"]


def test_latest_json_holds_every_field_and_the_key(tmp_path):
    path = tmp_path / "latest.json"
    write_json([Figure.from_dict(figure("x", 3, "events/s", "y", 6), "ingest")], path)
    (saved,) = json.loads(path.read_text())
    assert saved == {
        "name": "x",
        "value": 3.0,
        "unit": "events/s",
        "reference": "y",
        "reference_value": 6.0,
        "ratio": 0.5,
        "key": "ingest.x.y",
        "area": "ingest",
    }


def test_progress_names_the_area_and_each_round_of_each_measure(capsys):
    progress.start_area("ingest", 1, 7)

    def sqlite_figures():
        return alternating({"trove": lambda: 1.0, "raw": lambda: 2.0}, rounds=2)

    assert sqlite_figures() == {"trove": 1.0, "raw": 2.0}
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "[ingest 1/7] started",
        "[ingest 1/7] sqlite figures: 1/4 round 1/2, trove",
        "[ingest 1/7] sqlite figures: 2/4 round 1/2, raw",
        "[ingest 1/7] sqlite figures: 3/4 round 2/2, trove",
        "[ingest 1/7] sqlite figures: 4/4 round 2/2, raw",
    ]


def test_the_runner_gives_each_figure_its_area(monkeypatch, capsys):
    module = types.SimpleNamespace(run=lambda full: [figure("REST 1 event", 1, "ms", "view", 2)])
    monkeypatch.setattr(runner.importlib, "import_module", lambda name: module)
    figures, failed = runner.run_area("api_ingest", full=False)
    assert not failed
    assert [(f.area, f.key) for f in figures] == [("api_ingest", "api_ingest.rest-event.view")]
    assert "REST 1 event" in capsys.readouterr().out
