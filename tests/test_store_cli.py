"""`matcher db ...` and `matcher token ...` on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

import factories as f
from matcher.cli import cli, main
from matcher.schema import load_world
from matcher.store import counts, head_revision, make_engine, read_world, verify_token

from test_store import small_world


@pytest.fixture
def run(db_url):
    """Invoke the CLI against this test's database, as a user with MATCHER_DATABASE_URL set would."""
    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(cli, list(args), env={"MATCHER_DATABASE_URL": db_url}, catch_exceptions=False)
        return result
    return invoke


@pytest.fixture
def world_dir(tmp_path):
    from matcher.schema import write_world
    world = small_world()
    write_world(world, tmp_path / "world")
    return tmp_path / "world"


@pytest.mark.parametrize("args", [["db", "--help"], ["db", "init", "--help"], ["db", "import", "--help"],
                                  ["db", "export", "--help"], ["token", "--help"], ["token", "create", "--help"],
                                  ["token", "revoke", "--help"]])
def test_every_store_verb_has_help(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ")


def test_db_init_creates_the_schema_and_can_be_repeated(run, db_url):
    first = run("db", "init")
    second = run("db", "init")
    assert first.exit_code == second.exit_code == 0
    assert f"schema revision {head_revision()}" in second.output
    eng = make_engine(db_url)
    assert counts(eng)["workers"] == 0
    eng.dispose()


def test_db_import_on_an_empty_database_prints_counts_per_table(run, db_url, world_dir):
    result = run("db", "import", str(world_dir))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["households: 3 inserted, 0 unchanged", "workers: 4 inserted, 0 unchanged",
                                          "jobs: 3 inserted, 0 unchanged", "referrals: 2 inserted, 0 unchanged"]
    again = run("db", "import", str(world_dir))
    assert again.stdout.splitlines() == ["households: 0 inserted, 3 unchanged", "workers: 0 inserted, 4 unchanged",
                                         "jobs: 0 inserted, 3 unchanged", "referrals: 0 inserted, 2 unchanged"]
    eng = make_engine(db_url)
    assert len(read_world(eng).workers) == 4
    eng.dispose()


def test_db_export_writes_a_world_that_loads_back_equal(run, db_url, world_dir, tmp_path):
    run("db", "import", str(world_dir))
    result = run("db", "export", str(tmp_path / "dump"))
    assert result.exit_code == 0
    assert "workers: 4 rows" in result.stdout
    eng = make_engine(db_url)
    stored = read_world(eng)
    eng.dispose()
    loaded = load_world(tmp_path / "dump")
    for name in ("households", "workers", "jobs", "referrals"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(stored, name))


def test_token_create_prints_the_token_alone_on_the_last_line(run, db_url):
    run("db", "init")
    result = run("token", "create", "--role", "volunteer", "--name", "wang", "--county", "371102",
                 "--expires-days", "30")
    assert result.exit_code == 0
    token = result.stdout.splitlines()[-1]
    assert token == token.strip() and " " not in token and len(token) >= 40
    eng = make_engine(db_url)
    info = verify_token(eng, token)
    assert (info.name, info.role, info.county_code) == ("wang", "volunteer", "371102")
    assert info.expires_at is not None
    revoked = run("token", "revoke", "wang")
    assert revoked.exit_code == 0 and "revoked 1 token(s)" in revoked.stdout
    assert verify_token(eng, token) is None
    eng.dispose()


def _main(monkeypatch, capsys, db_url, *args):
    monkeypatch.setenv("MATCHER_DATABASE_URL", db_url)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_bad_world_exits_nonzero_with_one_line_naming_the_row(monkeypatch, capsys, db_url, tmp_path, world_dir):
    assert _main(monkeypatch, capsys, db_url, "db", "import", str(world_dir))[0] == 0
    h = f.household()
    f.write_world_rows(tmp_path / "bad", [h], [f.worker(h["household_id"]), f.worker("H-nowhere")], [])
    code, out, err = _main(monkeypatch, capsys, db_url, "db", "import", str(tmp_path / "bad"))
    assert code == 1
    assert err.strip().splitlines() == ["matcher: workers.csv, row 3, column 'household_id': unknown household "
                                        "'H-nowhere'"]
    eng = make_engine(db_url)
    assert counts(eng)["households"] == 3
    eng.dispose()


def test_a_volunteer_token_without_county_exits_nonzero(monkeypatch, capsys, db_url):
    _main(monkeypatch, capsys, db_url, "db", "init")
    code, out, err = _main(monkeypatch, capsys, db_url, "token", "create", "--role", "volunteer", "--name", "li")
    assert code == 1
    assert err.strip() == "matcher: a volunteer token needs the 6-digit code of the county it serves"


def test_export_before_init_says_what_to_run(monkeypatch, capsys, db_url, tmp_path):
    code, out, err = _main(monkeypatch, capsys, db_url, "db", "export", str(tmp_path / "dump"))
    assert code == 1
    assert "has no tables yet; run `matcher db init`" in err
    assert not (tmp_path / "dump").exists()


def test_revoking_an_unknown_token_exits_nonzero(monkeypatch, capsys, db_url):
    _main(monkeypatch, capsys, db_url, "db", "init")
    code, out, err = _main(monkeypatch, capsys, db_url, "token", "revoke", "nobody")
    assert code == 1
    assert err.strip() == "matcher: no live token with name 'nobody'"


def test_make_import_twice_keeps_a_hire_recorded_in_between(tmp_path):
    """`make run` again on the same checkout: the world is imported again and what the service recorded stays."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    import datetime as dt
    from matcher.store import queries
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    bin_dir = Path(sys.executable).parent
    url = f"sqlite:///{tmp_path / 'matcher.db'}"
    cmd = ["make", "-s", "-C", str(root), "-o", f"{bin_dir}/.installed", "import", f"BIN={bin_dir}",
           f"WORLD={tmp_path / 'world'}", "HOUSEHOLDS=60"]
    env = {**__import__("os").environ, "MATCHER_DATABASE_URL": url}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr
    eng = make_engine(url)
    world = read_world(eng)
    job = world.jobs[(world.jobs.status == "open") & (world.jobs.filled < world.jobs.slots)].iloc[0]
    worker = world.workers[~world.workers.employed].iloc[0]
    queries.insert_referral(eng, "R-MAKE", worker.worker_id, job.job_id, dt.date(2026, 11, 20), None)
    assert queries.record_outcome(eng, "R-MAKE", "hired", None, None) == "ok"
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert second.returncode == 0, second.stderr
    assert "kept as stored" in second.stdout
    after = read_world(eng)
    assert bool(after.workers.set_index("worker_id").loc[worker.worker_id, "employed"]) is True
    assert int(after.jobs.set_index("job_id").loc[job.job_id, "filled"]) == int(job.filled) + 1
    assert "R-MAKE" in set(after.referrals.referral_id)
    eng.dispose()
