"""The Python versions w2sprobe declares are the ones it can run on, said the same everywhere.

The floor is pyproject's ``requires-python``. It is 3.11, not 3.10: the dependency pin
``filelock>=4.3`` (the lock re-check ``cache rm`` relies on) only exists for Python >= 3.11, and
the code reads TOML with the standard library's ``tomllib`` (3.11+). These tests keep the
declaration honest: the code needs nothing newer than the floor (checked by vermin, which knows
the version each standard-library module, member and syntax appeared in), the installed
dependencies admit the floor, and README and ruff state the same floor.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def declared_floor() -> tuple[int, int]:
    spec = PYPROJECT["project"]["requires-python"]
    match = re.fullmatch(r">=\s*3\.(\d+)", spec.strip())
    assert match, f"requires-python should be a plain floor, got {spec!r}"
    return 3, int(match.group(1))


def vermin(*paths: str) -> subprocess.CompletedProcess:
    """vermin's verdict on ``paths`` against the declared floor (exit 1: something needs more)."""
    major, minor = declared_floor()
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, vermin; sys.exit(vermin.main())",  # vermin has no __main__
            "--no-tips",
            "--violations",
            "--eval-annotations",  # options.py evaluates its annotations (get_type_hints)
            f"--target={major}.{minor}-",
            *paths,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow  # a subprocess (vermin), ~2 s
def test_the_code_needs_no_python_newer_than_requires_python():
    done = vermin("w2sprobe", "tests", "bench", "docs")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_check_catches_standard_library_use_newer_than_the_floor(tmp_path):
    major, minor = declared_floor()
    newer = tmp_path / "newer.py"
    # itertools.batched and typing.override are 3.12; the floor is below that
    assert (major, minor) < (3, 12)
    newer.write_text("import itertools\nprint(list(itertools.batched([1, 2, 3], 2)))\n")
    done = vermin(str(newer))
    assert done.returncode != 0 and "itertools.batched" in done.stdout


def test_the_installed_dependencies_admit_the_floor():
    """What CI installs could be installed on the floor (filelock 4.3 could not be on 3.10)."""
    floor = "{}.{}".format(*declared_floor())
    refused = []
    for text in PYPROJECT["project"]["dependencies"]:
        name = Requirement(text).name
        needs = metadata.metadata(name).get("Requires-Python")
        if needs and floor not in SpecifierSet(needs):
            refused.append(f"{name} {metadata.version(name)} requires Python {needs}")
    assert not refused, f"requires-python says >={floor}, but: {'; '.join(refused)}"


def test_readme_and_ruff_state_the_same_floor():
    floor = "{}.{}".format(*declared_floor())
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + floor.replace(".", "")
    readme = (REPO / "README.md").read_text()
    stated = set(re.findall(r"Python >= (3\.\d+)", readme))
    assert stated == {floor}, f"README states Python >= {sorted(stated)}; pyproject says {floor}"
