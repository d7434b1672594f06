"""The package installs quietly and whole: what a newcomer's `pip install` prints and what it installs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_building_the_package_prints_no_setuptools_warnings_and_ships_its_data(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert "Warning" not in text and "would be ignored" not in text, text[-3000:]
    (wheel,) = tmp_path.glob("matcher-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("matcher/policy.toml", "matcher/api/templates/volunteer.html", "matcher/api/static/common.js",
                   "matcher/store/migrations/versions/0001_initial.py", "matcher/data/rizhao/villages.csv",
                   "matcher/data/SOURCES.md"):
        assert needed in names, needed
    assert not any("__pycache__" in n for n in names)
