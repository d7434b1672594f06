"""What the web pages need beyond SPEC section 5's table: who am I, households by place, one
household with its members and referrals, and where jobs are.

- ``GET /api/v1/me``: the token's name, role and county (any role), so a page can greet its user
  and scope its place pickers.
- ``GET /api/v1/households``: households by county, town or village, optionally only those not yet
  covered (able and willing, no such member employed: the count ``GET /api/v1/stats`` calls
  ``covered``), or found by ``q`` (the household's id, the head's name or a member's name).
  Volunteers see their own scope only (county, or their villages), whatever they ask for.
- ``GET /api/v1/me/households``: a volunteer's households, most urgent first (SPEC section 7).
- ``GET /api/v1/households/{id}``: the household, its members and its members' referrals, so a
  volunteer can record an outcome later. Out of scope is a 404.
- ``GET /api/v1/job-places?ids=``: where jobs are (jobs are public: ``GET /api/v1/jobs`` lists them
  to any role), for the household map; match items carry no coordinates.

Every read of a household's data is written to the audit log, as the other endpoints do.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Annotated

import sqlalchemy as sa
from flask import Blueprint, g
from pydantic import Field

from matcher.api.auth import audit, require_scope, scope_villages
from matcher.api.errors import not_found
from matcher.api.openapi import ROLES, endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import (NO_CONTROL, PERSONAL_NOTE, County, Referral, Town, Village, Worker, _In, _Out,
                                 _text, plausible_id)
from matcher.store.queries import households, jobs, referrals, workers

bp = Blueprint("households_list", __name__, url_prefix="/api/v1")
MATCHERS = ("volunteer", "admin")
MAX_PAGE = 100
MAX_IDS = 100


# -- place names ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _county_names() -> dict[str, str]:
    from matcher.divisions import counties
    return dict(zip(counties()["county_code"], counties()["name"]))


def county_name(code: str | None) -> str | None:
    return _county_names().get(code, code) if code else None


def place_name(code: str | None) -> str | None:
    """A town's or village's name by its code (the code itself when unknown)."""
    if not code:
        return None
    from matcher.ranking import place_name as name
    return name(code)


# -- schemas -------------------------------------------------------------------------------------

class Me(_Out):
    name: str
    role: str
    county_code: str | None
    county_name: str | None
    display_name: str | None = Field(None, description="a signed-in person's display name (null for a token)")
    villages: list[str] = Field(default_factory=list, description="a volunteer's villages (empty: the whole county)")
    csrf_token: str | None = Field(None, description="with a session cookie: the X-CSRF-Token its writes need")


class HouseholdsQuery(_In):
    model_config = {"extra": "ignore"}
    county_code: County | None = Field(None, description="volunteers: only their own county answers")
    town_code: Town | None = None
    village_code: Village | None = None
    uncovered: bool = Field(False, description="only households able and willing to work with no such "
                                               "member employed yet")
    q: _text(50, 1) | None = Field(None, description="find by the household's id (case-insensitive, its start "
                                                     "is enough), the head's name or a member's name (any part)")
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(20, ge=1, description="page size, capped at 100")


class PageQuery(_In):
    model_config = {"extra": "ignore"}
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(20, ge=1, description="page size, capped at 100")


class HouseholdSummary(_Out):
    household_id: str
    county_code: str
    town_code: str
    village_code: str | None
    town_name: str | None
    village_name: str | None
    head_name: str | None = Field(None, description=f"户主姓名; {PERSONAL_NOTE}")
    lat: float
    lon: float
    members: int = Field(description="working-age members")
    seekers: int = Field(description="members able, wanting a job and not employed")
    employed: int = Field(description="members employed")
    able_willing: bool = Field(description="at least one member able and willing to work or run a business")
    covered: bool = Field(description="able and willing, and at least one such member employed")


class HouseholdPage(_Out):
    items: list[HouseholdSummary]
    page: int
    per_page: int
    total: int


class UrgentHousehold(HouseholdSummary):
    no_one_in_work: bool = Field(description="no member employed, and someone able and willing: the most urgent")
    graduates: int = Field(description="members who are graduates of extremely poor families, not employed")
    fallback_members: int = Field(description="members disabled or of the 4050 ages (policy)")
    last_contact: dt.date | None = Field(description="the latest referral of a member (none yet: null, first)")


class UrgentPage(_Out):
    items: list[UrgentHousehold]
    page: int
    per_page: int
    total: int


class Member(Worker):
    fallback_eligible: bool = Field(description="may take public-welfare posts: disabled, or 4050 (policy ages)")


class HouseholdReferral(Referral):
    title: str | None
    employer: str | None
    kind: str | None


class HouseholdDetail(HouseholdSummary):
    phone: str | None = Field(None, description=PERSONAL_NOTE)
    county_name: str | None
    village_lat: float | None = Field(None, description="the village's (approximate) centre, for the map")
    village_lon: float | None = None
    members_detail: list[Member]
    referrals: list[HouseholdReferral] = Field(description="the members' referrals, newest first")


class JobPlacesQuery(_In):
    model_config = {"extra": "ignore"}
    ids: Annotated[str, Field(min_length=1, max_length=MAX_IDS * 65,
                              json_schema_extra={"pattern": NO_CONTROL},
                              description=f"job ids separated by commas (at most {MAX_IDS})")]


class JobPlace(_Out):
    job_id: str
    title: str
    employer: str
    kind: str
    lat: float | None
    lon: float | None
    county_code: str | None
    town_code: str | None
    village_code: str | None
    slots: int
    filled: int
    status: str


class JobPlaces(_Out):
    items: list[JobPlace]


# -- queries -------------------------------------------------------------------------------------

_ABLE = sa.and_(workers.c.labour_capacity != "none", workers.c.wants != "none")


def _member_counts():
    one = sa.literal(1)
    return (sa.select(
        workers.c.household_id,
        sa.func.count().label("members"),
        sa.func.sum(sa.case((sa.and_(workers.c.employed.is_(False), workers.c.wants == "job",
                                     workers.c.labour_capacity != "none"), one), else_=0)).label("seekers"),
        sa.func.sum(sa.case((workers.c.employed.is_(True), one), else_=0)).label("employed"),
        sa.func.sum(sa.case((_ABLE, one), else_=0)).label("able"),
        sa.func.sum(sa.case((sa.and_(_ABLE, workers.c.employed.is_(True)), one), else_=0)).label("able_employed"),
    ).group_by(workers.c.household_id).subquery("m"))


def _summary(row) -> dict:
    able, able_employed = int(row.able or 0), int(row.able_employed or 0)
    return {"household_id": row.household_id, "county_code": row.county_code, "town_code": row.town_code,
            "village_code": row.village_code or None, "town_name": place_name(row.town_code),
            "village_name": place_name(row.village_code), "head_name": row.head_name or None,
            "lat": float(row.lat), "lon": float(row.lon),
            "members": int(row.members or 0), "seekers": int(row.seekers or 0), "employed": int(row.employed or 0),
            "able_willing": able > 0, "covered": able > 0 and able_employed > 0}


def _select_summaries(m):
    return sa.select(households.c.household_id, households.c.county_code, households.c.town_code,
                     households.c.village_code, households.c.head_name, households.c.phone, households.c.lat,
                     households.c.lon, m.c.members, m.c.seekers,
                     m.c.employed, m.c.able, m.c.able_employed).select_from(
        households.outerjoin(m, m.c.household_id == households.c.household_id))


def scope_conditions(county_code, villages) -> list:
    """Households of a county, narrowed to villages when given."""
    conds = []
    if county_code:
        conds.append(households.c.county_code == county_code)
    if villages:
        conds.append(households.c.village_code.in_(list(villages)))
    return conds


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped


def search_conditions(q: str) -> list:
    """A household whose id starts with ``q`` (any case), or whose head's or a member's name holds it."""
    q = q.strip()
    if not q:
        return []
    text = _like(q)
    member = sa.select(workers.c.household_id).where(
        sa.func.lower(workers.c.name).like(f"%{text}%", escape="\\"))
    return [sa.or_(sa.func.lower(households.c.household_id).like(f"{text}%", escape="\\"),
                   sa.func.lower(households.c.head_name).like(f"%{text}%", escape="\\"),
                   households.c.household_id.in_(member))]


def list_households(engine, *, county_code, town_code, village_code, uncovered, offset, limit, villages=None,
                    q=None):
    m = _member_counts()
    conds = scope_conditions(county_code, villages)
    if town_code:
        conds.append(households.c.town_code == town_code)
    if village_code:
        conds.append(households.c.village_code == village_code)
    if uncovered:
        conds += [sa.func.coalesce(m.c.able, 0) > 0, sa.func.coalesce(m.c.able_employed, 0) == 0]
    if q:
        conds += search_conditions(q)
    stmt = _select_summaries(m).where(*conds)
    with engine.connect() as conn, conn.begin():
        total = conn.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
        rows = conn.execute(stmt.order_by(households.c.town_code, households.c.village_code,
                                          households.c.household_id).offset(offset).limit(limit)).all()
    return [_summary(r) for r in rows], int(total)


def urgent_households(engine, policy, *, county_code, villages, offset, limit) -> tuple[list[dict], int]:
    """The households in scope, most urgent first (SPEC section 7): no member in work and someone able
    and willing; then graduates of extremely poor families; then disabled or 4050 members; then the
    longest since the last contact (a member's latest referral; never contacted first)."""
    import pandas as pd

    from matcher.eligibility import fallback_eligible
    m = _member_counts()
    conds = scope_conditions(county_code, villages)
    with engine.connect() as conn, conn.begin():
        heads = conn.execute(_select_summaries(m).where(*conds)).all()
        members = pd.DataFrame(conn.execute(
            sa.select(workers.c.household_id, workers.c.age, workers.c.sex, workers.c.disability,
                      workers.c.graduate, workers.c.employed)
            .join(households, households.c.household_id == workers.c.household_id).where(*conds)).all(),
            columns=["household_id", "age", "sex", "disability", "graduate", "employed"])
        contact = dict(conn.execute(
            sa.select(workers.c.household_id, sa.func.max(referrals.c.referred_on))
            .select_from(referrals.join(workers, workers.c.worker_id == referrals.c.worker_id)
                         .join(households, households.c.household_id == workers.c.household_id))
            .where(*conds).group_by(workers.c.household_id)).all())
    if members.empty:
        fallback, graduates = {}, {}
    else:
        members["fallback"] = fallback_eligible(members["age"].to_numpy(), (members["sex"] == "F").to_numpy(),
                                                (members["disability"] != "none").to_numpy(), policy)
        members["graduate_idle"] = members["graduate"].astype(bool) & ~members["employed"].astype(bool)
        by = members.groupby("household_id")
        fallback, graduates = by["fallback"].sum().to_dict(), by["graduate_idle"].sum().to_dict()
    items = []
    for row in heads:
        out = _summary(row)
        out["no_one_in_work"] = out["able_willing"] and out["employed"] == 0
        out["graduates"] = int(graduates.get(row.household_id, 0))
        out["fallback_members"] = int(fallback.get(row.household_id, 0))
        out["last_contact"] = contact.get(row.household_id)
        items.append(out)
    never = dt.date.min
    order = sorted(items, key=lambda h: (not h["no_one_in_work"], h["graduates"] == 0, h["fallback_members"] == 0,
                                         h["last_contact"] or never, h["household_id"]))
    return order[offset:offset + limit], len(order)


def _fallback_eligible(worker: dict) -> bool:
    from matcher.eligibility import fallback_eligible
    return bool(fallback_eligible([worker["age"]], [worker["sex"] == "F"], [worker["disability"] != "none"],
                                  runtime().policy)[0])


def household_detail(engine, household_id: str) -> dict | None:
    m = _member_counts()
    member_cols = [workers.c[c] for c in Worker.model_fields]
    with engine.connect() as conn, conn.begin():
        head = conn.execute(_select_summaries(m).where(households.c.household_id == household_id)).first()
        if head is None:
            return None
        members = conn.execute(sa.select(*member_cols).where(workers.c.household_id == household_id)
                               .order_by(workers.c.worker_id)).mappings().all()
        refs = conn.execute(
            sa.select(referrals.c.referral_id, referrals.c.worker_id, referrals.c.job_id, referrals.c.referred_on,
                      referrals.c.outcome, referrals.c.reason, referrals.c.retained_6m, jobs.c.title,
                      jobs.c.employer, jobs.c.kind)
            .select_from(referrals.join(workers, workers.c.worker_id == referrals.c.worker_id)
                         .outerjoin(jobs, jobs.c.job_id == referrals.c.job_id))
            .where(workers.c.household_id == household_id)
            .order_by(referrals.c.referred_on.desc(), referrals.c.referral_id.desc())).mappings().all()
    out = _summary(head)
    out["phone"] = head.phone or None
    out["county_name"] = county_name(head.county_code)
    out["village_lat"], out["village_lon"] = _village_point(head.village_code)
    out["members_detail"] = []
    for w in members:
        w = dict(w, skills=[t for t in (w["skills"] or "").split(";") if t])
        w["fallback_eligible"] = _fallback_eligible(w)
        out["members_detail"].append(w)
    out["referrals"] = []
    for r in refs:
        reason, _, note = (r["reason"] or "").partition(": ")
        out["referrals"].append(dict(r, reason=reason or None, note=note or None))
    return out


@lru_cache(maxsize=1)
def _village_points() -> dict[str, tuple[float, float]]:
    from matcher.divisions import villages
    v = villages()
    return {c: (float(a), float(b)) for c, a, b in zip(v["village_code"], v["lat"], v["lon"])}


def _village_point(code: str | None) -> tuple[float | None, float | None]:
    return _village_points().get(code or "", (None, None))


# -- endpoints -----------------------------------------------------------------------------------

@endpoint(bp, "/me", summary="Who is asking: name, role, county and villages (and, with the session cookie, its CSRF token)", roles=ROLES, response=Me, tag="pages")
def me():
    from matcher.store.users import csrf_token
    tok = g.token
    session_id = g.get("session_id")
    return {"name": tok.name, "role": tok.role, "county_code": tok.county_code,
            "county_name": county_name(tok.county_code), "display_name": tok.display_name,
            "villages": list(tok.villages), "csrf_token": csrf_token(session_id) if session_id else None}


@endpoint(bp, "/households", summary="Households by county, town or village, or found by id or name; "
          "optionally only those not yet covered",
          description="Volunteers see the households of their own scope only (their county, or their villages): "
                      "asking for another county answers an empty page. `q` finds a household by its id (any "
                      "case), its head's name or a member's name.", roles=MATCHERS, query=HouseholdsQuery,
          response=HouseholdPage, tag="pages")
def get_households(query: HouseholdsQuery):
    county = query.county_code
    per_page = min(query.per_page, MAX_PAGE)
    if g.token.role == "volunteer":
        if county is not None and county != g.token.county_code:
            return {"items": [], "page": query.page, "per_page": per_page, "total": 0}
        county = g.token.county_code
    items, total = list_households(runtime().engine, county_code=county, town_code=query.town_code,
                                   village_code=query.village_code, uncovered=query.uncovered,
                                   offset=(query.page - 1) * per_page, limit=per_page, villages=scope_villages(),
                                   q=query.q)
    where = query.village_code or query.town_code or county or "all"
    audit("household.search" if query.q else "household.list", "place", where)
    return {"items": items, "page": query.page, "per_page": per_page, "total": total}


@endpoint(bp, "/me/households", summary="My households, most urgent first",
          description="A volunteer's villages (else county); an admin's, the whole city. Most urgent first: no "
                      "member in work and someone able and willing; then graduates of extremely poor families; "
                      "then disabled or 4050 members; then the longest since the last contact (a member's latest "
                      "referral). Paginated, at most 100 a page.", roles=MATCHERS, query=PageQuery,
          response=UrgentPage, tag="pages")
def my_households(query: PageQuery):
    tok = g.token
    per_page = min(query.per_page, MAX_PAGE)
    county = tok.county_code if tok.role == "volunteer" else None
    rt = runtime()
    items, total = urgent_households(rt.engine, rt.policy, county_code=county, villages=scope_villages(),
                                     offset=(query.page - 1) * per_page, limit=per_page)
    audit("household.mine", "place", county or "all")
    return {"items": items, "page": query.page, "per_page": per_page, "total": total}


@endpoint(bp, "/households/<household_id>", summary="A household with its members and their referrals",
          roles=MATCHERS, response=HouseholdDetail, path_params={"household_id": "the household's id"},
          tag="pages")
def get_household(household_id: str):
    detail = household_detail(runtime().engine, household_id) if plausible_id(household_id) else None
    if detail is None:
        raise not_found("household")
    require_scope(detail["county_code"], "household", household_id, village_code=detail["village_code"])
    audit("household.read", "household", household_id)
    return detail


@endpoint(bp, "/job-places", summary="Where jobs are (for maps); unknown ids are left out", roles=ROLES,
          query=JobPlacesQuery, response=JobPlaces, tag="pages")
def job_places(query: JobPlacesQuery):
    from matcher.api.errors import invalid
    ids = list(dict.fromkeys(i.strip() for i in query.ids.split(",") if i.strip()))
    if len(ids) > MAX_IDS:
        raise invalid(f"ids: at most {MAX_IDS} ids", "ids")
    ids = [i for i in ids if plausible_id(i)]
    cols = [jobs.c[c] for c in JobPlace.model_fields]
    with runtime().engine.connect() as conn:
        rows = conn.execute(sa.select(*cols).where(jobs.c.job_id.in_(ids))).mappings().all() if ids else []
    order = {j: i for i, j in enumerate(ids)}
    return {"items": sorted((dict(r) for r in rows), key=lambda r: order[r["job_id"]])}
