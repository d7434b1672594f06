"""Finding people (SPEC section 7): my households, most urgent first; households by id, head's name
or a member's name."""

from __future__ import annotations

import pytest

import factories as f
from conftest import make_api


def urgency_world():
    h = lambda hid, **kw: f.household(household_id=hid, **kw)  # noqa: E731
    homes = [h("H-PLAIN"), h("H-4050"), h("H-GRAD"), h("H-IDLE-NEW"), h("H-IDLE-OLD"), h("H-IDLE-NEVER"),
             h("H-IDLE-GRAD", head_name="孙志强"), h("H-NOBODY"),
             h("H-ELSEWHERE", county_code="371121", town_code="371121102", village_code="371121102201",
               lat=35.75, lon=118.95)]
    workers = [
        f.worker("H-PLAIN", worker_id="W-PLAIN", age=30, employed=True),
        f.worker("H-4050", worker_id="W-4050A", age=30, employed=True),
        f.worker("H-4050", worker_id="W-4050B", age=55, sex="M", wants="none"),   # 4050: a man of 50 or more
        f.worker("H-GRAD", worker_id="W-GRADA", age=50, sex="M", employed=True),
        f.worker("H-GRAD", worker_id="W-GRADB", age=23, graduate=True, education="college", name="孙小雨"),
        f.worker("H-IDLE-NEW", worker_id="W-NEW", age=35),
        f.worker("H-IDLE-OLD", worker_id="W-OLD", age=35),
        f.worker("H-IDLE-NEVER", worker_id="W-NEVER", age=35, name="周桂芳"),
        f.worker("H-IDLE-GRAD", worker_id="W-IG", age=24, graduate=True, education="college"),
        f.worker("H-ELSEWHERE", worker_id="W-ELSE", age=35, name="周桂芳"),
    ]
    jobs = [f.job(job_id="J-1")]
    history = [f.referral("W-NEW", "J-1", outcome="declined", referred_on="2026-06-01"),
               f.referral("W-OLD", "J-1", outcome="declined", referred_on="2026-01-01")]
    return f.world(homes, workers, jobs, history)


@pytest.fixture(scope="module")
def fapi(tmp_path_factory, prior_model_dir):
    tmp = tmp_path_factory.mktemp("find")
    a = make_api(f"sqlite:///{tmp / 'find.db'}", tmp, prior_model_dir, world=urgency_world())
    yield a
    a.app.extensions["matcher"].dispose()


def ids(page):
    return [h["household_id"] for h in page["items"]]


def test_my_households_come_most_urgent_first(fapi):
    page = fapi.get("/api/v1/me/households", as_="volunteer").get_json()
    assert ids(page) == ["H-IDLE-GRAD",                             # no one in work, and a graduate
                         "H-IDLE-NEVER", "H-IDLE-OLD", "H-IDLE-NEW",  # no one in work: never contacted, then longest ago
                         "H-GRAD",                                    # a graduate of an extremely poor family
                         "H-4050",                                    # a 4050 member
                         "H-NOBODY", "H-PLAIN"]                       # the rest, by id
    first = page["items"][0]
    assert (first["no_one_in_work"], first["graduates"], first["last_contact"]) == (True, 1, None)
    by_id = {h["household_id"]: h for h in page["items"]}
    assert by_id["H-IDLE-OLD"]["last_contact"] == "2026-01-01"
    assert by_id["H-4050"]["fallback_members"] == 1 and by_id["H-4050"]["no_one_in_work"] is False
    assert by_id["H-GRAD"]["fallback_members"] == 1      # the employed man of 50 is of the 4050 ages too
    assert page["total"] == 8


def test_my_households_are_paginated_and_capped(fapi):
    page = fapi.get("/api/v1/me/households?per_page=2&page=2", as_="volunteer").get_json()
    assert ids(page) == ["H-IDLE-OLD", "H-IDLE-NEW"] and page["total"] == 8
    assert fapi.get("/api/v1/me/households?per_page=5000", as_="volunteer").get_json()["per_page"] == 100
    assert fapi.get("/api/v1/me/households?page=0", as_="volunteer").status_code == 422
    assert fapi.get("/api/v1/me/households", as_="recruiter").status_code == 403
    assert ids(fapi.get("/api/v1/me/households", as_="volunteer_other").get_json()) == ["H-ELSEWHERE"]


def test_the_4050_ages_come_from_the_policy(fapi, tmp_path, prior_model_dir):
    from matcher.policy import DEFAULT_POLICY
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("men_min_age = 50", "men_min_age = 60")
    policy = tmp_path / "policy.toml"
    policy.write_text(text, encoding="utf-8")
    other = make_api(f"sqlite:///{tmp_path / 'p.db'}", tmp_path, prior_model_dir, world=urgency_world(),
                     POLICY_PATH=str(policy))
    by_id = {h["household_id"]: h for h in other.get("/api/v1/me/households", as_="volunteer").get_json()["items"]}
    assert by_id["H-4050"]["fallback_members"] == 0      # a man of 55 is not of the 4050 ages under this policy
    other.app.extensions["matcher"].dispose()


@pytest.mark.parametrize("q,expected", [
    ("h-idle-n", ["H-IDLE-NEVER", "H-IDLE-NEW"]),     # the household id, any case, its start
    ("H-GRAD", ["H-GRAD"]),
    ("孙志强", ["H-IDLE-GRAD"]),                       # the head's name
    ("志强", ["H-IDLE-GRAD"]),                         # part of it
    ("孙小雨", ["H-GRAD"]),                            # a member's name
    ("孙", ["H-GRAD", "H-IDLE-GRAD"]),                 # a surname
    ("周桂芳", ["H-IDLE-NEVER"]),                      # the namesake in another county is not in scope
    ("%", []), ("_", []), ("\\", []),                  # wildcards are letters here
])
def test_households_are_found_by_id_head_or_member_name_in_scope(fapi, q, expected):
    from urllib.parse import quote
    page = fapi.get(f"/api/v1/households?q={quote(q)}", as_="volunteer").get_json()
    assert sorted(ids(page)) == sorted(expected) and page["total"] == len(expected)


def test_an_admin_finds_in_every_county_and_a_blank_query_is_refused(fapi):
    page = fapi.get("/api/v1/households?q=周桂芳", as_="admin").get_json()
    assert sorted(ids(page)) == ["H-ELSEWHERE", "H-IDLE-NEVER"]
    assert fapi.get("/api/v1/households?q=", as_="admin").status_code == 422
    resp = fapi.get("/api/v1/households?q=" + "长" * 51, as_="admin")
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "q"
