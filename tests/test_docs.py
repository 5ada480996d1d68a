"""The documentation site builds without a warning and keeps up with the code: every
``TROVE`` key is documented with its default and every system check id is named."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.test_project import ROOT
from trove.conf import DEFAULTS

DOCS = ROOT / "docs"
SETTINGS_PAGE = DOCS / "settings.md"


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "settings" / "index.html").exists()


def settings_rows() -> dict[str, str]:
    """The settings page's key table: key → default cell."""
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", SETTINGS_PAGE.read_text(), re.M)
    return {key: default.strip() for key, default in rows}


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_trove_key_is_documented_with_its_default(key):
    rows = settings_rows()
    assert key in rows, f"docs/settings.md has no row for TROVE[{key!r}]"
    default = DEFAULTS[key]
    if key != "storage":  # described in words: a dict of three roles
        assert f"`{default!r}`" in rows[key], f"{key}: documented {rows[key]}, default {default!r}"


def test_every_system_check_id_is_documented():
    source = (ROOT / "trove" / "checks.py").read_text()
    page = SETTINGS_PAGE.read_text()
    ids = set(re.findall(r'id="(trove\.[EW]\d{3})"', source))
    assert ids, "no check ids found in trove/checks.py"
    assert {check for check in ids if f"`{check}`" not in page} == set()


def test_user_facing_text_never_cites_the_internal_specification():
    pages = [*DOCS.glob("*.md"), ROOT / "README.md"]
    citing = [page.name for page in pages if re.search(r"\bSPEC\b", page.read_text())]
    assert citing == []
