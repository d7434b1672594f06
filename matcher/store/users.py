"""Accounts for people (SPEC section 7): users, their sessions, and the sign-in throttle.

- Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher``, its default, memory-hard
  parameters); at least :data:`MIN_PASSWORD` characters.
- A session is a random id in an HttpOnly cookie; the store keeps its SHA-256 only, with the
  time it expires and the time it was revoked. Every request looks its session up, so signing
  out, disabling the user or changing the password ends it in every process at once.
- The CSRF token of a session is derived from its id (a SHA-256 under a fixed label): nothing
  more to store, and it changes with the session.
- Failed sign-ins are rows in the store, by login (known or not), so the throttle holds across
  processes: more than :data:`MAX_FAILURES` in :data:`FAILURE_WINDOW` answers 429.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from matcher.errors import MatcherError, NotFound
from matcher.store.db import write_connection
from matcher.store.models import ROLES, LoginFailure, User, UserSession, utcnow
from matcher.store.tokens import scope_county

MIN_PASSWORD, MAX_PASSWORD = 10, 1024
SESSION_DAYS = 30
MAX_FAILURES = 10
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOGIN = re.compile(r"[a-z0-9][a-z0-9_.@-]{1,63}")
_VILLAGE = re.compile(r"\d{12}")
MAX_SESSION_ID = 128

users, sessions, failures = User.__table__, UserSession.__table__, LoginFailure.__table__
HASHER = PasswordHasher()


class UserError(MatcherError):
    """An account cannot be made or changed as asked; ``field`` names what is wrong."""

    status = 422
    code = "invalid_value"


class Throttled(MatcherError):
    """Too many failed sign-ins for one login lately; ``retry_after`` is in seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed sign-ins for this login; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class UserInfo:
    """Who an account is: what the API and the audit log need, never the password hash."""

    id: int
    login: str
    display_name: str
    role: str
    county_code: str | None
    villages: tuple[str, ...]
    disabled: bool = False


def normalise_login(login: str | None) -> str:
    return (login or "").strip().lower()


def _printable(text: str) -> bool:
    return not any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def check_password(password: str | None, field: str = "password") -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters", field=field)
    if len(password) > MAX_PASSWORD:
        raise UserError(f"a password may have at most {MAX_PASSWORD} characters", field=field)
    return password


def _villages(villages, county: str | None) -> tuple[str, ...]:
    if isinstance(villages, str):
        villages = villages.split(";")
    codes = tuple(dict.fromkeys(v.strip() for v in (villages or ()) if v and v.strip()))
    for code in codes:
        if not _VILLAGE.fullmatch(code):
            raise UserError(f"expected 12-digit village codes, got {code!r}", field="villages")
        if county is None or not code.startswith(county):
            raise UserError(f"village {code} is not in county {county}", field="villages")
    from matcher.divisions import place_codes
    unknown = [c for c in codes if c not in place_codes()["village"]]
    if unknown:
        raise UserError(f"village {unknown[0]} is not one of Rizhao's villages", field="villages")
    return codes


def _info(row) -> UserInfo:
    return UserInfo(int(row.id), row.login, row.display_name, row.role, row.county_code,
                    tuple(v for v in (row.villages or "").split(";") if v), bool(row.disabled))


_USER_COLS = (users.c.id, users.c.login, users.c.display_name, users.c.role, users.c.county_code,
              users.c.villages, users.c.disabled)


# -- accounts ------------------------------------------------------------------------------------

def create_user(engine: Engine, *, role: str, login: str, password: str, display_name: str | None = None,
                county: str | None = None, villages=()) -> UserInfo:
    """Store a new account. Volunteers need a county; villages (volunteers only) narrow it."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", field="role")
    login = normalise_login(login)
    if not LOGIN.fullmatch(login):
        raise UserError("a login is 2-64 characters: lower-case letters, digits and _ . @ - "
                        "(starting with a letter or digit)", field="login")
    name = (display_name or login).strip()
    if not name or len(name) > 100 or not _printable(name):
        raise UserError("a display name is 1-100 printable characters", field="display_name")
    county = scope_county(role, county, UserError, "a volunteer")
    codes = _villages(villages, county)
    if codes and role != "volunteer":
        raise UserError("only volunteers are narrowed to villages", field="villages")
    hashed = HASHER.hash(check_password(password))
    try:
        with write_connection(engine) as conn:
            uid = conn.execute(sa.insert(users).values(
                login=login, display_name=name, role=role, county_code=county, villages=";".join(codes),
                password_hash=hashed, disabled=False, created_at=utcnow()).returning(users.c.id)).scalar_one()
    except sa.exc.IntegrityError:
        raise UserError(f"login {login!r} is taken", field="login") from None
    return UserInfo(int(uid), login, name, role, county, codes)


def list_users(engine: Engine) -> list[UserInfo]:
    with engine.connect() as conn:
        return [_info(r) for r in conn.execute(sa.select(*_USER_COLS).order_by(users.c.login))]


def get_user(engine: Engine, login: str) -> UserInfo | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(*_USER_COLS).where(users.c.login == normalise_login(login))).first()
    return _info(row) if row is not None else None


def disable_user(engine: Engine, login: str) -> UserInfo:
    """Disable an account and end every one of its sessions, in the same transaction."""
    login = normalise_login(login)
    now = utcnow()
    with write_connection(engine) as conn:
        uid = conn.execute(sa.update(users).where(users.c.login == login).values(disabled=True)
                           .returning(users.c.id)).scalar_one_or_none()
        if uid is None:
            raise NotFound(f"no user with login {login!r}")
        conn.execute(sa.update(sessions).where(sessions.c.user_id == uid, sessions.c.revoked_at.is_(None))
                     .values(revoked_at=now))
    return get_user(engine, login)


# -- signing in ----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against when the login is unknown, so that answer takes as long as a wrong password."""
    return HASHER.hash(secrets.token_urlsafe(24))


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _failures_since(conn, login: str, since: dt.datetime) -> list[dt.datetime]:
    return list(conn.execute(sa.select(failures.c.at).where(failures.c.login == login, failures.c.at > since)
                             .order_by(failures.c.at)).scalars())


def authenticate(engine: Engine, login: str, password: str, *, now: dt.datetime | None = None) -> UserInfo | None:
    """The account if the password is its own and it is enabled, else None (and the failure is counted).

    Raises :class:`Throttled`, checking nothing, once more than :data:`MAX_FAILURES` failures for
    this login fall within :data:`FAILURE_WINDOW`. An unknown login, a disabled account and a wrong
    password all cost one argon2 verification and give the same None.
    """
    now = now or utcnow()
    key = normalise_login(login)[:64]
    with engine.connect() as conn:
        recent = _failures_since(conn, key, now - FAILURE_WINDOW)
        row = conn.execute(sa.select(*_USER_COLS, users.c.password_hash).where(users.c.login == key)).first()
    if len(recent) >= MAX_FAILURES:
        oldest = recent[-MAX_FAILURES]
        raise Throttled(max(1, int((oldest + FAILURE_WINDOW - now).total_seconds()) + 1))
    password = password if isinstance(password, str) else ""
    ok = _verify(row.password_hash if row is not None else _dummy_hash(), password[:MAX_PASSWORD])
    if not ok or row is None or row.disabled:
        with write_connection(engine) as conn:
            conn.execute(sa.insert(failures).values(login=key, at=now))
            # Old failures count for nothing: keep the table small.
            conn.execute(sa.delete(failures).where(failures.c.at <= now - FAILURE_WINDOW))
        return None
    with write_connection(engine) as conn:
        conn.execute(sa.delete(failures).where(failures.c.login == key))
        if HASHER.check_needs_rehash(row.password_hash):
            conn.execute(sa.update(users).where(users.c.id == row.id).values(password_hash=HASHER.hash(password)))
    return _info(row)


# -- sessions ------------------------------------------------------------------------------------

def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token that goes with a session: derived from its secret id, never stored."""
    return hashlib.sha256(b"matcher-csrf:" + session_id.encode("utf-8")).hexdigest()


def csrf_ok(session_id: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(session_id), str(sent))


def create_session(engine: Engine, user_id: int, *, now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
    """A new session for the user: its secret id (for the cookie) and when it expires."""
    now = now or utcnow()
    session_id = secrets.token_urlsafe(32)
    expires = now + dt.timedelta(days=SESSION_DAYS)
    with write_connection(engine) as conn:
        conn.execute(sa.insert(sessions).values(session_hash=_hash(session_id), user_id=user_id, created_at=now,
                                                expires_at=expires))
    return session_id, expires


def session_user(engine: Engine, session_id: str | None, *, now: dt.datetime | None = None) -> UserInfo | None:
    """The enabled user of a live session, or None (unknown, expired, revoked, user disabled)."""
    if not session_id or len(session_id) > MAX_SESSION_ID:
        return None
    now = now or utcnow()
    with engine.connect() as conn:
        row = conn.execute(sa.select(*_USER_COLS).select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                           .where(sessions.c.session_hash == _hash(session_id), sessions.c.revoked_at.is_(None),
                                  sessions.c.expires_at > now, users.c.disabled.is_(False))).first()
    return _info(row) if row is not None else None


def revoke_session(engine: Engine, session_id: str) -> bool:
    with write_connection(engine) as conn:
        return conn.execute(sa.update(sessions).where(sessions.c.session_hash == _hash(session_id),
                                                      sessions.c.revoked_at.is_(None))
                            .values(revoked_at=utcnow())).rowcount > 0


def change_password(engine: Engine, user_id: int, current: str, new: str) -> bool:
    """Set a new password if ``current`` is right; every session of the user ends. False when it is wrong."""
    new = check_password(new, "new_password")
    with engine.connect() as conn:
        hashed = conn.execute(sa.select(users.c.password_hash).where(users.c.id == user_id)).scalar_one_or_none()
    if hashed is None or not _verify(hashed, (current or "")[:MAX_PASSWORD]):
        return False
    now = utcnow()
    with write_connection(engine) as conn:
        conn.execute(sa.update(users).where(users.c.id == user_id)
                     .values(password_hash=HASHER.hash(new), password_changed_at=now))
        conn.execute(sa.update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                     .values(revoked_at=now))
    return True
