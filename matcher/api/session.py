"""Signing in and out (SPEC section 7): ``POST``/``DELETE /api/v1/session``, ``POST /api/v1/session/password``.

A session is a random id in an ``HttpOnly``, ``SameSite=Strict`` cookie lasting 30 days, marked
``Secure`` when the request came over HTTPS (``X-Forwarded-Proto`` counts only with
``TRUST_PROXY``). The store keeps the id's SHA-256 and every request looks it up
(:mod:`matcher.store.users`), so an ended session is ended in every process at once. Signing in
answers the session's CSRF token, which a write made with the cookie must send as
``X-CSRF-Token``. A wrong login and a wrong password get the same 401 and cost the same time.
"""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint, Response, current_app, g, request
from pydantic import Field
from werkzeug.http import dump_cookie

from matcher.api.auth import SESSION_COOKIE, Principal, audit
from matcher.api.errors import APIError, invalid
from matcher.api.openapi import ROLES, Reply, endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import _In, _Out
from matcher.store import users as accounts

bp = Blueprint("session", __name__, url_prefix="/api/v1/session")

WRONG = "wrong login or password"
Secret = Annotated[str, Field(min_length=1, max_length=accounts.MAX_PASSWORD)]


class SessionIn(_In):
    login: Annotated[str, Field(min_length=1, max_length=200)]
    password: Secret


class PasswordIn(_In):
    current_password: Secret
    new_password: Annotated[str, Field(min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD,
                                       description=f"at least {accounts.MIN_PASSWORD} characters")]


class SessionOut(_Out):
    display_name: str
    role: str
    county_code: str | None
    villages: list[str] = Field(description="a volunteer's villages (empty: the whole county)")
    csrf_token: str = Field(description="send as the X-CSRF-Token header with every write made with the cookie")


def _https() -> bool:
    if request.is_secure:
        return True
    if current_app.config.get("TRUST_PROXY"):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


def _cookie(session_id: str, max_age: int) -> str:
    return dump_cookie(SESSION_COOKIE, session_id, max_age=max_age, path="/", secure=_https(), httponly=True,
                       samesite="Strict")


def clear_cookie_header() -> str:
    return _cookie("", 0)


def _signed_in(user: accounts.UserInfo, status: int = 200) -> Reply:
    session_id, _ = accounts.create_session(runtime().engine, user.id)
    g.token = Principal("user", user.id, user.login, user.role, user.county_code, user.villages, user.display_name)
    body = {"display_name": user.display_name, "role": user.role, "county_code": user.county_code,
            "villages": list(user.villages), "csrf_token": accounts.csrf_token(session_id)}
    return Reply(body, status, {"Set-Cookie": _cookie(session_id, accounts.SESSION_DAYS * 86400)})


@endpoint(bp, "", "POST", summary="Sign in", roles=None, body=SessionIn, response=SessionOut, errors=(401, 429),
          description="Answers the user and a CSRF token, and sets the session cookie (HttpOnly, SameSite=Strict, "
                      "Secure over HTTPS; 30 days). A wrong login and a wrong password are the same 401. More "
                      f"than {accounts.MAX_FAILURES} failures for one login in 15 minutes are a 429 with "
                      "Retry-After.", response_headers={"Set-Cookie": "the session cookie"})
def sign_in(body: SessionIn):
    engine = runtime().engine
    try:
        user = accounts.authenticate(engine, body.login, body.password)
    except accounts.Throttled as exc:
        raise APIError(429, "rate_limited", exc.message, headers={"Retry-After": str(exc.retry_after)}) from None
    if user is None:
        known = accounts.get_user(engine, body.login)
        if known is not None:
            g.token = Principal("user", known.id, known.login, known.role, known.county_code)
        audit("session.failed", "user", None, 401)
        raise APIError(401, "unauthorized", WRONG)
    reply = _signed_in(user)
    audit("session.create", "user", None, 200)
    return reply


@endpoint(bp, "", "DELETE", summary="Sign out: end this session at once, in every process", roles=ROLES,
          status=204, description="With a bearer token there is no session to end (tokens are revoked with "
                                  "`matcher token revoke`); the answer is the same 204.")
def sign_out():
    session_id = g.get("session_id")
    if session_id:
        accounts.revoke_session(runtime().engine, session_id)
        audit("session.delete", "user", None, 204)
    resp = Response(status=204)
    resp.headers["Set-Cookie"] = clear_cookie_header()
    return resp


@endpoint(bp, "/password", "POST", summary="Change the password; every session of the user ends",
          description="Answers a new session (cookie and CSRF token) for this browser; every other session of "
                      "the user, in every process, is ended. A wrong current password is a 422 naming "
                      "current_password (not a 401: the session stays).", roles=ROLES, body=PasswordIn,
          response=SessionOut, errors=(422,), response_headers={"Set-Cookie": "the new session cookie"})
def change_password(body: PasswordIn):
    tok = g.token
    if tok.kind != "user":
        raise APIError(403, "forbidden", "only a signed-in person has a password; tokens have none")
    engine = runtime().engine
    if not accounts.change_password(engine, tok.id, body.current_password, body.new_password):
        audit("session.password_refused", "user", None, 422)
        raise invalid("current_password: is not this account's password", "current_password")
    user = accounts.get_user(engine, tok.name)
    audit("session.password", "user", None, 200)
    return _signed_in(user)
