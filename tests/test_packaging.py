"""What ``pip install trove-django`` gets: the package with its type information, templates
and static files, S3 only as an extra; and the type checks ``make lint`` runs pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser

import pytest

from tests.test_project import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """A wheel built from a copy of the sources: setuptools reuses a ``build/`` folder, which
    would let files removed from the tree linger in the wheel."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "trove", source / "trove", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("trove_django-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_ships_type_information_templates_and_static_files(wheel):
    names = set(wheel.namelist())
    assert "trove/py.typed" in names
    assert "trove/templates/admin/trove/event/list.html" in names
    assert "trove/static/trove/admin.css" in names
    assert "trove/migrations/0001_initial.py" in names
    assert not any(name.startswith(("tests/", "trove_project/")) for name in names)


def test_s3_packages_are_an_extra_not_a_requirement(wheel):
    (metadata,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    requires = Parser().parsestr(wheel.read(metadata).decode()).get_all("Requires-Dist")
    plain = [r for r in requires if "extra ==" not in r]
    s3 = [r for r in requires if 'extra == "s3"' in r]
    assert not any(name in r for r in plain for name in ("boto3", "django-storages"))
    assert any(r.startswith("boto3") for r in s3) and any("django-storages" in r for r in s3)


def test_mypy_finds_no_type_errors_in_trove():
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
