"""Accounts in the store: `matcher user create | disable | list`, the rules of an account, and the
migration that brings a v1 database (revision 0002) up to accounts, keeping its tokens and data."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from matcher.store import current_revision, init_db, make_engine, verify_token
from matcher.store.migrate import head_revision


def matcher(db_url, *args, stdin=None):
    import os
    env = dict(os.environ, MATCHER_DATABASE_URL=db_url)
    return subprocess.run([sys.executable, "-m", "matcher", *args], input=stdin, capture_output=True, text=True,
                          env=env)


# -- the migration ---------------------------------------------------------------------------------

def _v1_database(url):
    """A database at revision 0002 (before accounts), holding a household, a worker and a token."""
    from alembic import command

    from matcher.store.migrate import alembic_config
    from matcher.store.db import write_connection
    engine = make_engine(url)
    cfg = alembic_config()
    with write_connection(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with write_connection(engine) as conn:
        conn.execute(sa.text("INSERT INTO households (household_id, county_code, town_code, village_code, lat, lon) "
                             "VALUES ('H-V1', '371102', '371102107', '371102107201', 35.5, 119.27)"))
        conn.execute(sa.text("INSERT INTO workers (worker_id, household_id, age, sex, disability, labour_capacity, "
                             "wants, skills, education, home_only, will_migrate, graduate, employed) VALUES "
                             "('W-V1', 'H-V1', 44, 'F', 'none', 'full', 'job', '缝纫', 'junior', false, false, "
                             "false, false)"))
    from matcher.store import create_token
    token = create_token(engine, "volunteer", "vol-v1", county="371102")
    return engine, token


def test_upgrading_a_v1_database_keeps_its_tokens_and_data(db_url):
    from matcher.store import read_world
    engine, token = _v1_database(db_url)
    assert current_revision(engine) == "0002"
    assert init_db(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    info = verify_token(engine, token)
    assert (info.name, info.role, info.county_code) == ("vol-v1", "volunteer", "371102")
    world = read_world(engine)
    hh = world.households.set_index("household_id").loc["H-V1"]
    assert (hh["village_code"], hh["lat"], hh["head_name"], hh["phone"]) == ("371102107201", 35.5, "", "")
    w = world.workers.set_index("worker_id").loc["W-V1"]
    assert (w["age"], w["skills"], w["name"]) == (44, ("缝纫",), "")
    from matcher.store.users import authenticate, create_user
    create_user(engine, role="admin", login="first.admin", password="a long enough password")
    assert authenticate(engine, "first.admin", "a long enough password").role == "admin"
    engine.dispose()


# -- the rules of an account -------------------------------------------------------------------

@pytest.fixture
def store(sqlite_url):
    init_db(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("kw,field", [
    ({"role": "volunteer", "login": "v.one", "password": "ten chars!"}, "county"),
    ({"role": "volunteer", "login": "v.one", "password": "ten chars!", "county": "110101"}, "county"),
    ({"role": "volunteer", "login": "v.one", "password": "nine char", "county": "371102"}, "password"),
    ({"role": "boss", "login": "v.one", "password": "ten chars!"}, "role"),
    ({"role": "admin", "login": "有 空格", "password": "ten chars!"}, "login"),
    ({"role": "admin", "login": "a", "password": "ten chars!"}, "login"),
    ({"role": "admin", "login": "ok.admin", "password": "ten chars!", "display_name": "bad\x07name"}, "display_name"),
    ({"role": "volunteer", "login": "v.one", "password": "ten chars!", "county": "371102",
      "villages": "371121102201"}, "villages"),
    ({"role": "volunteer", "login": "v.one", "password": "ten chars!", "county": "371102",
      "villages": "371102999999"}, "villages"),
    ({"role": "volunteer", "login": "v.one", "password": "ten chars!", "county": "371102",
      "villages": "371102107999"}, "villages"),
    ({"role": "recruiter", "login": "r.one", "password": "ten chars!", "county": "371102",
      "villages": "371102107201"}, "villages"),
])
def test_an_account_that_breaks_a_rule_is_refused_naming_the_field(store, kw, field):
    from matcher.store.users import UserError, create_user, list_users
    with pytest.raises(UserError) as exc:
        create_user(store, **kw)
    assert exc.value.field == field
    assert list_users(store) == []


def test_passwords_are_stored_as_argon2id_hashes_only(store):
    from matcher.store.users import create_user
    create_user(store, role="admin", login="boss", password="the admin password")
    with store.connect() as conn:
        (hashed,) = conn.execute(sa.text("SELECT password_hash FROM users")).one()
    assert hashed.startswith("$argon2id$") and "the admin password" not in hashed


def test_a_login_is_taken_once(store):
    from matcher.store.users import UserError, create_user
    create_user(store, role="admin", login="boss", password="the admin password")
    with pytest.raises(UserError, match="taken"):
        create_user(store, role="admin", login="BOSS", password="the admin password")


# -- the command line ------------------------------------------------------------------------------

def test_user_create_reads_the_password_from_stdin_and_list_shows_the_account(sqlite_url):
    assert matcher(sqlite_url, "db", "init").returncode == 0
    made = matcher(sqlite_url, "user", "create", "--role", "volunteer", "--login", "Li.Wei", "--display-name",
                   "李伟", "--county", "371102", "--villages", "371102107201;371102107202",
                   stdin="村里的密码-2026\n")
    assert made.returncode == 0, made.stderr
    assert "li.wei" in made.stdout and "村里的密码" not in made.stdout
    listed = matcher(sqlite_url, "user", "list").stdout.splitlines()
    assert listed[0].split("\t") == ["login", "role", "county", "villages", "state", "display_name"]
    assert listed[1].split("\t") == ["li.wei", "volunteer", "371102", "371102107201;371102107202", "active", "李伟"]
    from matcher.store.users import authenticate
    engine = make_engine(sqlite_url)
    assert authenticate(engine, "li.wei", "村里的密码-2026").villages == ("371102107201", "371102107202")
    engine.dispose()


def test_user_create_generate_prints_the_password_alone_on_the_last_line(sqlite_url):
    matcher(sqlite_url, "db", "init")
    made = matcher(sqlite_url, "user", "create", "--role", "admin", "--login", "boss", "--generate")
    assert made.returncode == 0, made.stderr
    password = made.stdout.splitlines()[-1]
    assert len(password) >= 10 and " " not in password
    from matcher.store.users import authenticate
    engine = make_engine(sqlite_url)
    assert authenticate(engine, "boss", password).role == "admin"
    engine.dispose()


def test_user_create_refuses_a_short_password_with_one_line(sqlite_url):
    matcher(sqlite_url, "db", "init")
    made = matcher(sqlite_url, "user", "create", "--role", "admin", "--login", "boss", stdin="short\n")
    assert made.returncode != 0
    assert made.stderr.strip() == "matcher: a password needs at least 10 characters"
    assert matcher(sqlite_url, "user", "list").stdout.splitlines()[1:] == []


def test_user_disable_ends_the_account_and_its_sessions(sqlite_url):
    from matcher.store.users import authenticate, create_session, create_user, session_user
    init_db(sqlite_url)
    engine = make_engine(sqlite_url)
    user = create_user(engine, role="admin", login="boss", password="the admin password")
    sid, _ = create_session(engine, user.id)
    out = matcher(sqlite_url, "user", "disable", "BOSS")
    assert out.returncode == 0, out.stderr
    assert session_user(engine, sid) is None
    assert authenticate(engine, "boss", "the admin password") is None
    assert "disabled" in matcher(sqlite_url, "user", "list").stdout
    missing = matcher(sqlite_url, "user", "disable", "nobody")
    assert missing.returncode != 0 and missing.stderr.strip() == "matcher: no user with login 'nobody'"
    engine.dispose()
