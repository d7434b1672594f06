"""The store on SQLite and PostgreSQL: schema, import/export, constraints, tokens."""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import factories as f
from matcher.errors import MatcherError, NotFound, SchemaError
from matcher.schema import ID_COLUMN, World, empty_table, load_world
from matcher.store import (counts, create_token, current_revision, export_world, hash_token, head_revision,
                           import_world, init_db, make_engine, normalise_url, read_table, read_world, revoke_token,
                           session_scope, verify_token, write_connection)
from matcher.store.models import TABLE_ORDER, Base, Job, Referral
from matcher.store.tokens import TokenError

WORLD_TABLES = ("households", "workers", "jobs", "referrals")


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    init_db(eng)
    yield eng
    eng.dispose()


def small_world():
    """Three households, four workers, three jobs, two referrals; every optional column exercised."""
    h1, h2 = f.household(), f.household(village_code="")
    h3 = f.household(county_code="371121", town_code="371121102", village_code="371121102201", lat=35.1, lon=118.9)
    w1 = f.worker(h1["household_id"], skills="缝纫;农产品分拣", max_commute_km=12.5)
    w2 = f.worker(h1["household_id"], sex="M", age=52, disability="physical", disability_grade=2,
                  labour_capacity="partial", education="primary")
    w3 = f.worker(h2["household_id"], graduate=True, education="college", will_migrate=True)
    w4 = f.worker(h3["household_id"], home_only=True, employed=True, wants="none")
    j1 = f.job(skills="缝纫", requires="sight;literacy", slots=3, filled=1)
    j2 = f.job(kind="out_of_county", lat="", lon="", county_code="", town_code="", village_code="",
               employer="青岛某电子厂", title="装配工", monthly_wage=4200.5, physical_demand="medium")
    j3 = f.job(kind="public_welfare", village_code="", title="保洁员", status="closed", slots=1, filled=1)
    r1 = f.referral(w1["worker_id"], j1["job_id"], retained_6m=True)
    r2 = f.referral(w3["worker_id"], j2["job_id"], outcome="declined", referred_on="2025-12-30")
    return f.world([h1, h2, h3], [w1, w2, w3, w4], [j1, j2, j3], [r1, r2])


def dump(engine) -> dict[str, list[tuple]]:
    """Every row of every table, ordered, to compare the whole database before and after."""
    out = {}
    with engine.connect() as conn:
        for name in TABLE_ORDER:
            t = Base.metadata.tables[name]
            out[name] = [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
    return out


def sorted_frame(df: pd.DataFrame, name: str) -> pd.DataFrame:
    return df.sort_values(ID_COLUMN[name], key=lambda s: s.astype(str)).reset_index(drop=True)


# -- schema --------------------------------------------------------------------------------------

def test_init_creates_every_table_and_running_it_again_is_harmless(db_url):
    eng = make_engine(db_url)
    assert current_revision(eng) is None
    assert init_db(eng) == head_revision()
    assert set(TABLE_ORDER) <= set(sa.inspect(eng).get_table_names())
    import_world(eng, small_world())
    before = dump(eng)
    assert init_db(db_url) == head_revision()
    assert current_revision(eng) == head_revision()
    assert dump(eng) == before
    eng.dispose()


def test_migrations_create_exactly_what_the_models_declare(engine):
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diffs == []


def test_queries_have_their_indexes(engine):
    insp = sa.inspect(engine)
    indexed = {(t, tuple(ix["column_names"])) for t in TABLE_ORDER for ix in insp.get_indexes(t)}
    for wanted in [("workers", ("household_id",)), ("households", ("county_code",)), ("jobs", ("status",)),
                   ("referrals", ("worker_id",)), ("referrals", ("job_id",))]:
        assert wanted in indexed


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(sqlite_url, tmp_path):
    url = f"sqlite:///{tmp_path / 'deeper' / 'still' / 'm.db'}"
    eng = make_engine(url)
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    assert (tmp_path / "deeper" / "still" / "m.db").exists()
    eng.dispose()


def test_ddl_is_transactional_so_a_failed_migration_leaves_nothing_behind(db_url):
    eng = make_engine(db_url)
    with pytest.raises(RuntimeError):
        with write_connection(eng) as conn:
            conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
            raise RuntimeError("the next step failed")
    assert "half_done" not in sa.inspect(eng).get_table_names()
    eng.dispose()


def test_plain_postgresql_urls_get_the_psycopg_driver():
    assert normalise_url("postgresql://u:p@h:5432/d").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


# -- import --------------------------------------------------------------------------------------

def test_import_inserts_every_row_of_the_files(engine):
    world = small_world()
    result = import_world(engine, world)
    assert result.as_dict() == {"households": {"inserted": 3, "unchanged": 0, "kept": 0},
                                "workers": {"inserted": 4, "unchanged": 0, "kept": 0},
                                "jobs": {"inserted": 3, "unchanged": 0, "kept": 0},
                                "referrals": {"inserted": 2, "unchanged": 0, "kept": 0}}
    n = counts(engine)
    assert {k: n[k] for k in WORLD_TABLES} == {"households": 3, "workers": 4, "jobs": 3, "referrals": 2}
    assert n["api_tokens"] == 0 and n["allocation_rows"] == 0


def test_imported_world_reads_back_equal_with_the_dtypes_of_load_world(engine):
    world = small_world()
    import_world(engine, world)
    stored = read_world(engine)
    for name in WORLD_TABLES:
        got = getattr(stored, name)
        pd.testing.assert_frame_equal(got, sorted_frame(getattr(world, name), name))
        pd.testing.assert_series_equal(got.dtypes, empty_table(name).dtypes)
    assert stored.workers.set_index("worker_id").loc[world.workers.worker_id[0], "skills"] == ("缝纫", "农产品分拣")
    assert read_table(engine, "jobs").equals(stored.jobs)


def test_an_empty_database_reads_as_empty_typed_tables(engine):
    stored = read_world(engine)
    for name in WORLD_TABLES:
        assert len(getattr(stored, name)) == 0
        pd.testing.assert_series_equal(getattr(stored, name).dtypes, empty_table(name).dtypes)


def test_reimporting_the_same_world_changes_nothing(engine):
    world = small_world()
    import_world(engine, world)
    before = dump(engine)
    again = import_world(engine, world)
    assert again.inserted == {"households": 0, "workers": 0, "jobs": 0, "referrals": 0}
    assert again.unchanged == {"households": 3, "workers": 4, "jobs": 3, "referrals": 2}
    assert dump(engine) == before


def test_reimport_adds_only_the_new_rows(engine):
    world = small_world()
    import_world(engine, world)
    extra = f.worker(world.households.household_id[1], age=19)
    bigger = f.world([], [extra], [])
    result = import_world(engine, {"workers": bigger.workers})
    assert result.as_dict()["workers"] == {"inserted": 1, "unchanged": 0, "kept": 0}
    assert counts(engine)["workers"] == 5


def test_a_stored_id_with_different_values_is_refused_and_nothing_is_written(engine):
    world = small_world()
    import_world(engine, world)
    before = dump(engine)
    newcomer = f.table("households", [f.household()])
    workers = world.workers.copy()
    workers.loc[2, "age"] = 41
    changed = World(pd.concat([world.households, newcomer], ignore_index=True), workers, world.jobs,
                      world.referrals)
    with pytest.raises(SchemaError) as err:
        import_world(engine, changed)
    assert (err.value.file, err.value.row, err.value.column) == ("workers.csv", 4, "age")
    assert repr(world.workers.worker_id[2]) in str(err.value)
    assert dump(engine) == before


def test_a_conflict_in_the_last_table_leaves_earlier_tables_untouched(engine):
    world = small_world()
    import_world(engine, world)
    before = dump(engine)
    h = f.household()
    w = f.worker(h["household_id"])
    refs = world.referrals.copy()
    refs.loc[1, "outcome"] = "no_show"
    bad = World(pd.concat([world.households, f.table("households", [h])], ignore_index=True),
                  pd.concat([world.workers, f.table("workers", [w])], ignore_index=True), world.jobs, refs)
    with pytest.raises(SchemaError, match="referrals.csv, row 3, column 'outcome'"):
        import_world(engine, bad)
    assert dump(engine) == before


def test_a_worker_whose_household_is_nowhere_leaves_the_database_as_it_was(engine):
    import_world(engine, small_world())
    before = dump(engine)
    h = f.household()
    lost = f.worker("H-nowhere")
    bad = World(f.table("households", [h]), f.table("workers", [f.worker(h["household_id"]), lost]),
                  f.table("jobs", [f.job()]), f.table("referrals", []))
    with pytest.raises(SchemaError) as err:
        import_world(engine, bad)
    assert (err.value.file, err.value.row, err.value.column) == ("workers.csv", 3, "household_id")
    assert "'H-nowhere'" in str(err.value)
    assert dump(engine) == before


def test_references_to_rows_already_stored_are_accepted(engine):
    world = small_world()
    import_world(engine, world)
    w = f.worker(world.households.household_id[2])
    r = f.referral(w["worker_id"], world.jobs.job_id[0], outcome="rejected")
    result = import_world(engine, {"workers": f.table("workers", [w]), "referrals": f.table("referrals", [r])})
    assert result.inserted == {"households": 0, "workers": 1, "jobs": 0, "referrals": 1}


def test_a_referral_to_an_unknown_job_is_refused(engine):
    world = small_world()
    import_world(engine, world)
    before = dump(engine)
    r = f.referral(world.workers.worker_id[0], "J-nowhere")
    with pytest.raises(SchemaError, match=r"referrals.csv, row 2, column 'job_id': unknown job 'J-nowhere'"):
        import_world(engine, {"referrals": f.table("referrals", [r])})
    assert dump(engine) == before


def test_a_big_import_and_its_repeat_take_seconds(engine):
    households = [f.household() for _ in range(3000)]
    workers = [f.worker(households[i % 3000]["household_id"], skills="缝纫") for i in range(30_000)]
    world = f.world(households, workers, [f.job() for _ in range(500)])
    t0 = dt.datetime.now()
    assert import_world(engine, world).inserted["workers"] == 30_000
    assert import_world(engine, world).unchanged["workers"] == 30_000
    assert (dt.datetime.now() - t0).total_seconds() < 30
    assert counts(engine)["workers"] == 30_000


# -- export --------------------------------------------------------------------------------------

def test_export_then_load_round_trips_exactly(engine, tmp_path):
    world = small_world()
    import_world(engine, world)
    written = export_world(engine, tmp_path / "out")
    assert written == {"households": 3, "workers": 4, "jobs": 3, "referrals": 2}
    loaded = load_world(tmp_path / "out")
    stored = read_world(engine)
    for name in WORLD_TABLES:
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(stored, name))
        pd.testing.assert_frame_equal(getattr(loaded, name), sorted_frame(getattr(world, name), name))
    assert import_world(engine, loaded).inserted == {n: 0 for n in WORLD_TABLES}


def test_pending_referrals_are_stored_but_not_part_of_the_exported_history(engine, tmp_path):
    world = small_world()
    import_world(engine, world)
    with session_scope(engine) as s:
        s.add(Referral(referral_id="R-pending", worker_id=world.workers.worker_id[1], job_id=world.jobs.job_id[0],
                       referred_on=dt.date(2026, 3, 1), created_by="volunteer-1"))
    assert counts(engine)["referrals"] == 3
    assert export_world(engine, tmp_path / "out")["referrals"] == 2
    assert "R-pending" not in set(load_world(tmp_path / "out").referrals.referral_id)


# -- constraints and transactions ----------------------------------------------------------------

@pytest.mark.parametrize("filled", [6, -1])
def test_the_database_refuses_a_job_filled_beyond_its_slots(engine, filled):
    world = small_world()
    import_world(engine, world)
    job_id = world.jobs.job_id[0]
    with pytest.raises(sa.exc.IntegrityError):
        with write_connection(engine) as conn:
            conn.execute(sa.update(Job).where(Job.job_id == job_id).values(filled=filled, slots=5))
    assert read_table(engine, "jobs").set_index("job_id").loc[job_id, "filled"] == 1


def test_the_database_refuses_a_worker_of_an_unknown_household(engine):
    row = f.worker("H-nowhere", age=30) | {"skills": "", "disability_grade": None, "max_commute_km": None}
    with pytest.raises(sa.exc.IntegrityError):
        with write_connection(engine) as conn:
            conn.execute(Base.metadata.tables["workers"].insert(), [row])
    assert counts(engine)["workers"] == 0


def test_session_scope_rolls_back_everything_on_error(engine):
    world = small_world()
    import_world(engine, world)
    before = dump(engine)
    with pytest.raises(RuntimeError):
        with session_scope(engine) as s:
            s.get(Job, world.jobs.job_id[1]).filled = 1
            s.flush()
            raise RuntimeError("boom")
    assert dump(engine) == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_an_engine_made_before_fork_works_in_the_child(engine):
    import_world(engine, small_world())
    assert counts(engine)["workers"] == 4  # the parent now holds a pooled connection
    pid = os.fork()
    if pid == 0:  # the child: exit status says whether the inherited engine works
        try:
            os._exit(0 if counts(engine)["workers"] == 4 else 1)
        except BaseException:  # noqa: BLE001
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert counts(engine)["workers"] == 4


# -- tokens --------------------------------------------------------------------------------------

def test_a_new_token_verifies_and_only_its_hash_is_stored(engine):
    token = create_token(engine, "volunteer", "zhang-wei", county="371102")
    info = verify_token(engine, token)
    assert (info.name, info.role, info.county_code, info.expires_at) == ("zhang-wei", "volunteer", "371102", None)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert stored == [hash_token(token)] and token not in stored


def test_unknown_and_empty_tokens_are_refused(engine):
    create_token(engine, "admin", "root")
    assert verify_token(engine, "not-a-token") is None
    assert verify_token(engine, "") is None
    assert verify_token(engine, None) is None


def test_an_expired_token_is_refused(engine):
    now = dt.datetime.now(dt.timezone.utc)
    old = create_token(engine, "recruiter", "workshop-1", expires_at=now - dt.timedelta(seconds=1))
    fresh = create_token(engine, "recruiter", "workshop-2", expires_at=now + dt.timedelta(days=1))
    assert verify_token(engine, old) is None
    info = verify_token(engine, fresh)
    assert info.name == "workshop-2"
    assert abs((info.expires_at - (now + dt.timedelta(days=1))).total_seconds()) < 1
    assert verify_token(engine, fresh, now=now + dt.timedelta(days=2)) is None


def test_a_revoked_token_is_refused(engine):
    a = create_token(engine, "evaluator", "eval")
    b = create_token(engine, "evaluator", "other")
    assert revoke_token(engine, "eval") == 1
    assert verify_token(engine, a) is None
    assert verify_token(engine, b).name == "other"
    with pytest.raises(NotFound):
        revoke_token(engine, "eval")
    other_id = verify_token(engine, b).id
    assert revoke_token(engine, other_id) == 1
    assert verify_token(engine, b) is None


def test_a_volunteer_token_needs_a_six_digit_county(engine):
    with pytest.raises(TokenError, match="volunteer token needs"):
        create_token(engine, "volunteer", "li")
    with pytest.raises(TokenError, match="6-digit county code, got '3711'"):
        create_token(engine, "volunteer", "li", county="3711")
    assert counts(engine)["api_tokens"] == 0


def test_an_unknown_role_is_refused_with_the_roles_it_could_be(engine):
    with pytest.raises(MatcherError, match="unknown role 'boss'; expected one of volunteer, recruiter, evaluator, admin"):
        create_token(engine, "boss", "x")
    assert counts(engine)["api_tokens"] == 0
