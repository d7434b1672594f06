"""Scope down to the village (SPEC section 7): a volunteer whose account names villages sees only
those villages' households, in every endpoint and every summary; the rest of its county is 404,
as another county is.

The table below is checked against the application's own routes, so a route added later
without a row here fails ``test_every_route_is_in_the_scope_table``.
"""

from __future__ import annotations

import re

import pytest

import factories as f
from conftest import make_api

TOWN = "371102107"
MINE, NEXT = "371102107201", "371102107202"      # 惠家庄, 沈疃一村: same town, same county
PASSWORD = "结对帮扶的密码-2026"


def scope_world():
    homes = [f.household(household_id="H-MINE", village_code=MINE, head_name="王建国", phone="13800001111"),
             f.household(household_id="H-NEXT", village_code=NEXT, lat=35.503855, lon=119.235644,
                         head_name="李秀英", phone="0633-8221234"),
             f.household(household_id="H-OTHER", county_code="371121", town_code="371121102",
                         village_code="371121102201", lat=35.75, lon=118.95, head_name="赵明")]
    workers = [f.worker("H-MINE", worker_id="W-MINE", name="王建国", age=48, sex="M", skills="缝纫"),
               f.worker("H-MINE", worker_id="W-MINE2", name="刘桂兰", age=46, skills="缝纫"),
               f.worker("H-NEXT", worker_id="W-NEXT", name="李秀英", age=44, skills="缝纫"),
               f.worker("H-OTHER", worker_id="W-OTHER", name="赵明", age=30)]
    jobs = [f.job(job_id="J-SEW", skills="缝纫", slots=5),
            f.job(job_id="J-PACK", kind="enterprise", employer="日照食品厂", title="包装工", slots=5, monthly_wage=3200),
            f.job(job_id="J-CLEAN", kind="public_welfare", employer="陈疃镇", title="保洁员", slots=2,
                  monthly_wage=800, min_age=40, max_age=65)]
    history = [f.referral("W-MINE", "J-SEW", outcome="declined", referred_on="2026-03-01"),
               f.referral("W-NEXT", "J-SEW", outcome="declined", referred_on="2026-03-02")]
    return f.world(homes, workers, jobs, history)


@pytest.fixture(scope="module")
def sapi(tmp_path_factory, prior_model_dir):
    tmp = tmp_path_factory.mktemp("scope")
    a = make_api(f"sqlite:///{tmp / 'scope.db'}", tmp, prior_model_dir, world=scope_world())
    from matcher.store import make_engine
    from matcher.store.users import create_user
    engine = make_engine(a.app.config["DATABASE_URL"])
    create_user(engine, role="volunteer", login="wang.pair", password=PASSWORD, county="371102", villages=[MINE],
                display_name="王结对")
    engine.dispose()
    a.village = a.app.test_client()
    a.csrf = a.village.post("/api/v1/session", json={"login": "wang.pair", "password": PASSWORD}).get_json()["csrf_token"]
    # A pending referral in each village, made by the admin; and a stored plan.
    a.refs = {}
    for worker in ("W-MINE2", "W-NEXT"):
        resp = a.post("/api/v1/referrals", as_="admin", json={"worker_id": worker, "job_id": "J-SEW"})
        a.refs[worker] = resp.get_json()["referral_id"]
    a.plan = a.post("/api/v1/allocations", as_="evaluator", json={}).get_json()["allocation_id"]
    yield a
    a.app.extensions["matcher"].dispose()


def village(api, method, path, json=None):
    headers = {"X-CSRF-Token": api.csrf} if method != "GET" else {}
    return api.village.open(path, method=method, json=json, headers=headers)


# (method, route template, the request in my village, the same request for the next village)
# Each pair must answer: mine 2xx, next 404 (or, for a list, an answer without the next village).
RECORDS = [
    ("GET", "/api/v1/households/<household_id>", "/api/v1/households/H-MINE", "/api/v1/households/H-NEXT"),
    ("GET", "/api/v1/households/<household_id>/matches", "/api/v1/households/H-MINE/matches",
     "/api/v1/households/H-NEXT/matches"),
    ("GET", "/api/v1/workers/<worker_id>/matches", "/api/v1/workers/W-MINE/matches", "/api/v1/workers/W-NEXT/matches"),
    ("GET", "/api/v1/referrals/<referral_id>", "{ref:W-MINE2}", "{ref:W-NEXT}"),
    ("GET", "/api/v1/households/<household_id>/visits", "/api/v1/households/H-MINE/visits",
     "/api/v1/households/H-NEXT/visits"),
]
WRITES = [
    ("POST", "/api/v1/referrals", {"worker_id": "W-MINE", "job_id": "J-PACK"},
     {"worker_id": "W-NEXT", "job_id": "J-PACK"}),
    ("PATCH", "/api/v1/referrals/<referral_id>", ("{ref:W-MINE2}", {"outcome": "declined", "reason": "wage"}),
     ("{ref:W-NEXT}", {"outcome": "declined", "reason": "wage"})),
    ("POST", "/api/v1/households/<household_id>/visits",
     ("/api/v1/households/H-MINE/visits", {"visited_on": "2026-03-01", "services": [{"worker_id": "W-MINE",
                                                                                  "kind": "guidance"}]}),
     ("/api/v1/households/H-NEXT/visits", {"visited_on": "2026-03-01", "services": [{"worker_id": "W-NEXT",
                                                                                  "kind": "guidance"}]})),
]
LISTS = [   # (method, route, request): no household, worker or referral of the next village in the answer
    ("GET", "/api/v1/households", "/api/v1/households"),
    ("GET", "/api/v1/households", "/api/v1/households?county_code=371102&town_code=371102107"),
    ("GET", "/api/v1/households", "/api/v1/households?village_code=371102107202"),
    ("GET", "/api/v1/households", "/api/v1/households?q=李秀英"),
    ("GET", "/api/v1/households", "/api/v1/households?q=h-next"),
    ("GET", "/api/v1/me/households", "/api/v1/me/households"),
    ("GET", "/api/v1/allocations/<int:allocation_id>", "{plan}"),
    ("GET", "/api/v1/referrals", "/api/v1/referrals?status=pending"),
    ("GET", "/api/v1/service-standard", "/api/v1/service-standard"),
    ("GET", "/api/v1/service-standard", "/api/v1/service-standard?county_code=371102&year=2026"),
    ("GET", "/api/v1/service-standard", "/api/v1/service-standard?format=csv"),
]
# Routes that carry no household's data: jobs are public, the rest are not for volunteers (403 by role).
NOT_PERSONAL = {
    ("GET", "/api/v1/jobs"), ("POST", "/api/v1/jobs"), ("GET", "/api/v1/jobs/<job_id>"),
    ("PATCH", "/api/v1/jobs/<job_id>"), ("POST", "/api/v1/jobs/<job_id>/close"),
    ("GET", "/api/v1/jobs/<job_id>/candidates"), ("POST", "/api/v1/households"), ("POST", "/api/v1/workers"),
    ("GET", "/api/v1/model"), ("POST", "/api/v1/model/reload"), ("POST", "/api/v1/allocations"),
    ("GET", "/api/v1/job-places"), ("GET", "/api/v1/me"), ("GET", "/healthz"), ("GET", "/readyz"),
    ("POST", "/api/v1/jobs/<job_id>/reopen"), ("GET", "/api/v1/referrals/reasons"),
    ("POST", "/api/v1/session"), ("DELETE", "/api/v1/session"), ("POST", "/api/v1/session/password"),
    ("GET", "/api/v1/divisions"),
}
VOLUNTEERS_FORBIDDEN = {("GET", "/api/v1/stats"), ("POST", "/api/v1/allocations"), ("POST", "/api/v1/households"),
                        ("POST", "/api/v1/workers"), ("POST", "/api/v1/import/households"),
                        ("POST", "/api/v1/import/workers"), ("POST", "/api/v1/import/jobs"), ("POST", "/api/v1/sites")}


def _fill(api, path: str) -> str:
    path = re.sub(r"\{ref:([\w-]+)\}", lambda m: f"/api/v1/referrals/{api.refs[m.group(1)]}", path)
    return path.replace("{plan}", f"/api/v1/allocations/{api.plan}")


def test_every_route_is_in_the_scope_table(sapi):
    covered = {(m, r) for m, r, *_ in RECORDS + WRITES + LISTS} | NOT_PERSONAL | VOLUNTEERS_FORBIDDEN
    routes = set()
    for rule in sapi.app.url_map.iter_rules():
        if getattr(sapi.app.view_functions[rule.endpoint], "operation", None) is None:
            continue
        routes |= {(m, rule.rule) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes - covered == set()


@pytest.mark.parametrize("method,route,mine,other", RECORDS, ids=[r[1] for r in RECORDS])
def test_a_record_of_another_village_is_404_like_a_missing_one(sapi, method, route, mine, other):
    ok = village(sapi, method, _fill(sapi, mine))
    assert ok.status_code == 200, ok.get_json()
    outside = village(sapi, method, _fill(sapi, other))
    assert outside.status_code == 404 and outside.get_json()["error"]["code"] == "not_found"
    # The county-wide token sees both.
    assert sapi.get(_fill(sapi, other), as_="volunteer").status_code == 200


@pytest.mark.parametrize("method,route,mine,other", WRITES, ids=[w[1] for w in WRITES])
def test_a_write_about_another_village_is_404_and_changes_nothing(sapi, method, route, mine, other):
    def call(arg):
        path, body = (arg[0], arg[1]) if isinstance(arg, tuple) else ("/api/v1/referrals", arg)
        return village(sapi, method, _fill(sapi, path), json=body)
    refused = call(other)
    assert refused.status_code == 404, refused.get_json()
    assert call(mine).status_code in (200, 201)
    pending = sapi.get(f"/api/v1/referrals/{sapi.refs['W-NEXT']}", as_="admin").get_json()
    assert pending["outcome"] is None
    next_refs = sapi.get("/api/v1/households/H-NEXT", as_="admin").get_json()["referrals"]
    assert {r["job_id"] for r in next_refs} == {"J-SEW"}


def _mentions(body) -> set[str]:
    ids = set()
    if isinstance(body, dict):
        for key in ("household_id", "worker_id", "referral_id"):
            if isinstance(body.get(key), str):
                ids.add(body[key])
        for v in body.values():
            ids |= _mentions(v)
    elif isinstance(body, list):
        for v in body:
            ids |= _mentions(v)
    return ids


@pytest.mark.parametrize("method,route,path", LISTS, ids=[p for _, _, p in LISTS])
def test_lists_and_summaries_hold_nothing_of_another_village(sapi, method, route, path):
    resp = village(sapi, method, _fill(sapi, path))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    text = resp.get_data(as_text=True)
    if resp.mimetype == "text/csv":
        assert text.startswith("worker_id,household_id,") and "W-MINE" in text
        assert not {"H-NEXT", "W-NEXT", "H-OTHER", "W-OTHER"} & set(re.findall(r"[HW]-[A-Z0-9]+", text))
        return
    seen = _mentions(resp.get_json())
    assert not seen & {"H-NEXT", "W-NEXT", sapi.refs["W-NEXT"], "H-OTHER", "W-OTHER"}
    assert "李秀英" not in text


def test_my_village_is_what_the_lists_hold(sapi):
    listed = village(sapi, "GET", "/api/v1/households").get_json()
    assert [h["household_id"] for h in listed["items"]] == ["H-MINE"] and listed["total"] == 1
    mine = village(sapi, "GET", "/api/v1/me/households").get_json()
    assert [h["household_id"] for h in mine["items"]] == ["H-MINE"]
    county = sapi.get("/api/v1/me/households", as_="volunteer").get_json()
    assert {h["household_id"] for h in county["items"]} == {"H-MINE", "H-NEXT"}
    plan = village(sapi, "GET", _fill(sapi, "{plan}")).get_json()
    assert {r["household_id"] for r in plan["rows"]} <= {"H-MINE"}
    assert plan["summary"]["workers_placed"] == len(plan["rows"])
    assert plan["summary"]["households_placed"] == len({r["household_id"] for r in plan["rows"]})


@pytest.mark.parametrize("method,route", sorted(VOLUNTEERS_FORBIDDEN))
def test_routes_not_for_volunteers_stay_403_for_a_village_volunteer(sapi, method, route):
    resp = village(sapi, method, route, json={} if method != "GET" else None)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"
