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


# The first releases without the advisories SECURITY.md names (pip-audit cannot reach its database here).
PATCHED = {"werkzeug": "3.0.6", "jinja2": "3.1.6", "gunicorn": "23.0", "mako": "1.2.2", "tqdm": "4.66.3",
           "flask": "3.1", "pydantic": "2.4", "scikit-learn": "1.5"}


def _minimums(lines) -> dict[str, str]:
    import re
    out = {}
    for line in lines:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)\s*", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def test_dependencies_start_at_releases_without_the_known_advisories():
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    pins = _minimums(cfg["options"]["install_requires"].splitlines())
    for name, fixed in PATCHED.items():
        assert name in pins, f"{name} has no minimum version in setup.cfg"
        assert _version(pins[name]) >= _version(fixed), (name, pins[name], fixed)
        assert fixed in (ROOT / "SECURITY.md").read_text(encoding="utf-8"), f"SECURITY.md names no fix for {name}"
    build = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"setuptools>=78.1.1"' in build


def test_the_readme_names_the_api_docs_and_what_the_commands_write_is_ignored():
    import shutil
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "/openapi.json" in readme and "/docs" in readme
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "recs.csv", "plan.csv", "sites.csv"],
                         capture_output=True, text=True)
    assert out.stdout.split() == ["recs.csv", "plan.csv", "sites.csv"]
