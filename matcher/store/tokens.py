"""API tokens. The plaintext is shown once; the database keeps only its SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from matcher.errors import MatcherError, NotFound
from matcher.store.db import write_connection
from matcher.store.models import ROLES, ApiToken, utcnow

_COUNTY = re.compile(r"\d{6}")
MAX_TOKEN_LENGTH = 256


class TokenError(MatcherError):
    """A token cannot be made as asked: unknown role, missing or malformed county, bad name."""

    status = 422
    code = "invalid_value"


@dataclass(frozen=True)
class TokenInfo:
    """Who a verified token speaks for. ``name`` is what jobs record as their ``owner``."""

    id: int
    name: str
    role: str
    county_code: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when.astimezone(dt.timezone.utc)


def scope_county(role: str, county: str | None, error: type[MatcherError], who: str) -> str | None:
    """The county a token or an account is scoped to: one of Rizhao's, and required for a volunteer."""
    county = (county or "").strip() or None
    if county is not None and not _COUNTY.fullmatch(county):
        raise error(f"expected a 6-digit county code, got {county!r}", field="county")
    if county is not None:
        from matcher.divisions import place_codes
        if county not in place_codes()["county"]:
            raise error(f"county {county} is not one of Rizhao's counties "
                        f"({', '.join(sorted(place_codes()['county']))})", field="county")
    if role == "volunteer" and county is None:
        raise error(f"{who} needs the 6-digit code of the county it serves", field="county")
    return county


def create_token(engine: Engine, role: str, name: str, county: str | None = None,
                 expires_at: dt.datetime | None = None) -> str:
    """Store a new token and return its plaintext, which is never shown again.

    Volunteers work for one county and need its 6-digit code; other roles may carry one.
    A naive ``expires_at`` is taken as UTC.
    """
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", field="role")
    name = (name or "").strip()
    if not name or len(name) > 100 or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise TokenError("a token needs a name of 1-100 printable characters", field="name")
    county = scope_county(role, county, TokenError, "a volunteer token")
    token = secrets.token_urlsafe(32)
    with write_connection(engine) as conn:
        conn.execute(sa.insert(ApiToken).values(name=name, role=role, county_code=county,
                                                token_hash=hash_token(token), created_at=utcnow(),
                                                expires_at=_aware(expires_at)))
    return token


def verify_token(engine: Engine, token: str | None, *, now: dt.datetime | None = None) -> TokenInfo | None:
    """The token's holder, or None for an unknown, expired or revoked token."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.county_code,
                                     ApiToken.created_at, ApiToken.expires_at, ApiToken.revoked_at)
                           .where(ApiToken.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    now = _aware(now) or utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    return TokenInfo(row.id, row.name, row.role, row.county_code, row.created_at, row.expires_at)


def revoke_token(engine: Engine, name_or_id: str | int) -> int:
    """Revoke a token by id (an int) or every live token with that name (a str); returns how many.

    Raises NotFound when nothing live matches.
    """
    t = ApiToken.__table__
    match = t.c.id == name_or_id if isinstance(name_or_id, int) else t.c.name == str(name_or_id).strip()
    with write_connection(engine) as conn:
        n = conn.execute(sa.update(t).where(match, t.c.revoked_at.is_(None)).values(revoked_at=utcnow())).rowcount
    if not n:
        what = f"id {name_or_id}" if isinstance(name_or_id, int) else f"name {name_or_id!r}"
        raise NotFound(f"no live token with {what}")
    return n
