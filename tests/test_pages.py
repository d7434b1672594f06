"""The web pages without a browser: they render in Chinese, load nothing from other hosts, label every
input, check the form as the API does; and the JSON reads the pages need, scoped and audited."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from conftest import API_COUNTY, OTHER_COUNTY

PAGES = ("/", "/recruiter")


class Tags(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict]]:
    p = Tags()
    p.feed(html)
    return p.tags


def audit_entries(api):
    from matcher.store import make_engine, queries
    writer = getattr(api.app.extensions["matcher"], "audit", None)
    if hasattr(writer, "flush"):
        writer.flush()
    engine = make_engine(api.app.config["DATABASE_URL"])
    try:
        return queries.audit_entries(engine)
    finally:
        engine.dispose()


# -- the pages -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PAGES)
def test_page_renders_in_simplified_chinese_without_a_token(api, path):
    resp = api.client.get(path)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "日照市就业扶贫" in html and "访问令牌" in html
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_nothing_from_another_host(api, path):
    html = api.client.get(path).get_data(as_text=True)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I)
    for tag, attrs in tags_of(html):
        for key in ("src", "href"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("/", "#", "data:")), (tag, value)


@pytest.mark.parametrize("path", PAGES)
def test_every_asset_a_page_names_is_served(api, path):
    html = api.client.get(path).get_data(as_text=True)
    assets = [a.get("src") or a.get("href") for t, a in tags_of(html) if t in ("script", "link") and
              (a.get("src") or a.get("href", "")).startswith("/static/")]
    assert len(assets) >= 3
    for url in assets:
        resp = api.client.get(url)
        assert resp.status_code == 200, url
        assert resp.mimetype in ("text/javascript", "application/javascript", "text/css"), url
        body = resp.get_data(as_text=True)
        # No fetch of another host from a script either; the SVG namespace is a name, not a request.
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", body), url


@pytest.mark.parametrize("path", PAGES)
def test_every_input_has_a_label_and_the_page_has_landmarks(api, path):
    tags = tags_of(api.client.get(path).get_data(as_text=True))
    labelled = {a["for"] for t, a in tags if t == "label" and "for" in a}
    for tag, attrs in tags:
        if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
            assert attrs.get("id") in labelled, f"<{tag} id={attrs.get('id')!r}> has no <label for>"
    names = [t for t, _ in tags]
    for landmark in ("header", "nav", "main", "footer"):
        assert landmark in names
    assert ("a", {"class": "skip-link", "href": "#main"}) in tags


def test_recruiter_form_carries_the_apis_own_bounds(api):
    from matcher.api.schemas import JobIn
    html = api.client.get("/recruiter").get_data(as_text=True)
    inputs = {a["id"]: a for t, a in tags_of(html) if t == "input" and "id" in a}
    schema = JobIn.model_json_schema()["properties"]
    for name in ("slots", "monthly_wage"):
        assert float(inputs[name]["min"]) == schema[name]["minimum"]
        assert float(inputs[name]["max"]) == schema[name]["maximum"]
    for name in ("min_age", "max_age"):
        bounds = [o for o in schema[name].get("anyOf", [schema[name]]) if o.get("type") == "integer"][0]
        assert (int(inputs[name]["min"]), int(inputs[name]["max"])) == (bounds["minimum"], bounds["maximum"])
    assert int(inputs["employer"]["maxlength"]) == 200
    assert (inputs["posted_on"]["min"], inputs["posted_on"]["max"]) == ("1970-01-01", "2200-12-31")


def test_enum_labels_are_the_chinese_names(api):
    from matcher.api.pages import LABELS
    assert LABELS["kind"] == {"workshop_factory": "厂房式扶贫车间", "workshop_home": "居家式扶贫车间",
                              "enterprise": "企业岗位", "out_of_county": "县外务工", "public_welfare": "公益性岗位"}
    assert LABELS["outcome"] == {"hired": "已录用", "declined": "婉拒", "rejected": "未录用", "no_show": "未到岗"}
    html = api.client.get("/recruiter").get_data(as_text=True)
    for label in LABELS["kind"].values():
        assert f">{label}</option>" in html


def test_divisions_of_one_county_are_served_with_chinese_names_and_a_long_cache(api):
    resp = api.get("/api/v1/divisions?county_code=371102", as_="recruiter")
    assert resp.status_code == 200
    assert "max-age=604800" in resp.headers["Cache-Control"] and resp.headers["ETag"]
    d = resp.get_json()
    assert d["county_code"] == "371102"
    assert {c[1] for c in d["counties"]} >= {"东港区", "岚山区", "五莲县", "莒县"}
    assert {t[2] for t in d["towns"]} == {"371102"} and len(d["towns"]) >= 10
    town = next(t for t in d["towns"] if t[0] == "371102107")
    assert town[1] == "陈疃镇"
    towns = {t[0] for t in d["towns"]}
    assert d["villages"] and all(v[1] and v[2] in towns for v in d["villages"])
    # The same ETag answers 304 with no body.
    again = api.get("/api/v1/divisions?county_code=371102", as_="recruiter",
                    headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_divisions_default_to_the_volunteers_county_and_to_counties_alone_without_one(api):
    mine = api.get("/api/v1/divisions", as_="volunteer").get_json()
    assert mine["county_code"] == API_COUNTY and {t[2] for t in mine["towns"]} == {API_COUNTY}
    other = api.get(f"/api/v1/divisions?county_code={OTHER_COUNTY}", as_="volunteer").get_json()
    assert {t[2] for t in other["towns"]} == {OTHER_COUNTY}
    city = api.get("/api/v1/divisions", as_="admin").get_json()
    assert city["county_code"] is None and city["towns"] == [] and city["villages"] == []
    assert len(city["counties"]) >= 4


@pytest.mark.parametrize("query", ["county_code=999999", "county_code=37110", "county_code=abc"])
def test_divisions_of_an_unknown_county_are_a_422_naming_it(api, query):
    resp = api.get(f"/api/v1/divisions?{query}", as_="volunteer")
    assert resp.status_code == 422
    assert resp.get_json()["error"]["field"] == "county_code"


def test_divisions_need_a_signed_in_caller(api):
    assert api.get("/api/v1/divisions?county_code=371102", as_=None).status_code == 401


def test_no_page_downloads_the_whole_citys_places(api):
    assert api.client.get("/divisions.json").status_code == 404
    for name in ("common.js", "volunteer.js", "recruiter.js"):
        body = api.client.get(f"/static/{name}").get_data(as_text=True)
        assert "divisions.json" not in body, name
    assert "/api/v1/divisions?" in api.client.get("/static/common.js").get_data(as_text=True)


def test_the_english_docs_link_is_only_on_the_recruiters_page_and_says_so(api):
    assert 'href="/docs"' not in api.client.get("/").get_data(as_text=True)
    html = api.client.get("/recruiter").get_data(as_text=True)
    assert re.search(r'<a href="/docs" hreflang="en">[^<]*英文', html)


# -- compression ------------------------------------------------------------------------------------

def test_large_answers_are_compressed_and_their_etag_still_answers_304(api):
    import gzip
    plain = api.get("/api/v1/divisions?county_code=371102", as_="volunteer")
    resp = api.get("/api/v1/divisions?county_code=371102", as_="volunteer", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in resp.headers["Vary"]
    body = resp.get_data()
    assert gzip.decompress(body) == plain.get_data() and len(body) < len(plain.get_data()) / 3
    assert resp.headers["ETag"] == plain.headers["ETag"][:-1] + ':gzip"'
    again = api.get("/api/v1/divisions?county_code=371102", as_="volunteer",
                    headers={"Accept-Encoding": "gzip", "If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


@pytest.mark.parametrize("path", ["/", "/api/v1/households/H-A/matches?k=10"])
def test_pages_and_matches_are_compressed_with_brotli_when_the_browser_takes_it(api, path):
    import brotli
    plain = api.get(path, as_="volunteer")
    resp = api.get(path, as_="volunteer", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "br"
    assert len(brotli.decompress(resp.get_data())) == len(plain.get_data())


def test_tiny_answers_and_answers_with_the_csrf_token_are_not_compressed(api):
    tiny = api.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert len(tiny.get_data()) < 500 and "Content-Encoding" not in tiny.headers
    me = api.get("/api/v1/me", as_="volunteer", headers={"Accept-Encoding": "gzip"})
    assert me.status_code == 200 and "Content-Encoding" not in me.headers


def test_static_files_are_compressed_and_keep_their_cache_validators(api):
    import brotli
    plain = api.client.get("/static/volunteer.js")
    resp = api.client.get("/static/volunteer.js", headers={"Accept-Encoding": "br"})
    assert resp.headers["Content-Encoding"] == "br"
    assert brotli.decompress(resp.get_data()) == plain.get_data()
    assert resp.headers.get("ETag") and resp.headers.get("Last-Modified")
    again = api.client.get("/static/volunteer.js", headers={"Accept-Encoding": "br",
                                                            "If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304


# -- the JSON reads the pages use ------------------------------------------------------------------

@pytest.mark.parametrize("role, county", [("volunteer", API_COUNTY), ("recruiter", None), ("admin", None)])
def test_me_tells_the_token_its_role_and_county(api, role, county):
    body = api.get("/api/v1/me", as_=role).get_json()
    assert body["role"] == role and body["county_code"] == county
    assert body["county_name"] == ("东港区" if county else None)
    assert api.get("/api/v1/me", as_=None).status_code == 401


def test_volunteer_lists_only_the_households_of_their_county(api):
    body = api.get("/api/v1/households", as_="volunteer").get_json()
    assert [h["household_id"] for h in body["items"]] == ["H-A", "H-B"] and body["total"] == 2
    h = body["items"][0]
    assert (h["town_name"], h["village_name"]) == ("陈疃镇", "惠家庄村委会")
    assert (h["members"], h["seekers"], h["employed"], h["able_willing"], h["covered"]) == (2, 2, 0, True, False)
    other = api.get(f"/api/v1/households?county_code={OTHER_COUNTY}", as_="volunteer").get_json()
    assert other["items"] == [] and other["total"] == 0
    every = api.get("/api/v1/households", as_="admin").get_json()
    assert {h["household_id"] for h in every["items"]} == {"H-A", "H-B", "H-OUT"}


def test_households_of_a_village_and_paging(api):
    body = api.get("/api/v1/households?village_code=371102107201&per_page=1&page=2", as_="volunteer").get_json()
    assert [h["household_id"] for h in body["items"]] == ["H-B"] and body["total"] == 2 and body["per_page"] == 1
    assert api.get("/api/v1/households?village_code=123", as_="volunteer").get_json()["error"]["field"] == "village_code"
    assert api.get("/api/v1/households?per_page=1000", as_="volunteer").get_json()["per_page"] == 100


def test_a_hire_moves_a_household_out_of_the_uncovered_list(api):
    uncovered = lambda: [h["household_id"] for h in  # noqa: E731
                         api.get("/api/v1/households?uncovered=true", as_="volunteer").get_json()["items"]]
    assert uncovered() == ["H-A", "H-B"]
    ref = api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A1", "job_id": "J-SEW"}).get_json()
    assert uncovered() == ["H-A", "H-B"]            # a referral is not a job yet
    api.patch(f"/api/v1/referrals/{ref['referral_id']}", as_="volunteer", json={"outcome": "hired"})
    assert uncovered() == ["H-B"]
    detail = api.get("/api/v1/households/H-A", as_="volunteer").get_json()
    assert detail["covered"] is True and detail["employed"] == 1


def test_recruiters_and_evaluators_may_not_list_households(api):
    for role in ("recruiter", "evaluator"):
        assert api.get("/api/v1/households", as_=role).status_code == 403
        assert api.get("/api/v1/households/H-A", as_=role).status_code == 403


def test_household_detail_has_members_referrals_and_its_village(api):
    ref = api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A2", "job_id": "J-PACK"}).get_json()
    api.patch(f"/api/v1/referrals/{ref['referral_id']}", as_="volunteer",
              json={"outcome": "declined", "reason": "distance", "note": "路远"})
    d = api.get("/api/v1/households/H-A", as_="volunteer").get_json()
    assert (d["household_id"], d["county_name"], d["covered"]) == ("H-A", "东港区", False)
    assert [m["worker_id"] for m in d["members_detail"]] == ["W-A1", "W-A2"]
    a1, a2 = d["members_detail"]
    assert a1["skills"] == ["缝纫"] and a1["fallback_eligible"] is False
    assert a2["fallback_eligible"] is True          # a man of 52: the 4050 rule
    assert d["village_lat"] == pytest.approx(35.49, abs=0.1) and d["village_lon"] == pytest.approx(119.24, abs=0.1)
    [r] = d["referrals"]
    assert (r["job_id"], r["title"], r["kind"], r["outcome"], r["reason"], r["note"]) == \
        ("J-PACK", "包装工", "enterprise", "declined", "distance", "路远")


def test_household_outside_the_county_is_404_and_reads_are_audited(api):
    assert api.get("/api/v1/households/H-OUT", as_="volunteer").status_code == 404
    assert api.get("/api/v1/households/nobody", as_="volunteer").status_code == 404
    assert api.get("/api/v1/households/H-OUT", as_="admin").status_code == 200
    api.get("/api/v1/households?village_code=371102107201", as_="volunteer")
    api.get("/api/v1/households/H-A", as_="volunteer")
    got = {(e["actor"], e["action"], e["resource_type"], e["resource_id"]) for e in audit_entries(api)}
    assert ("vol-donggang", "household.read", "household", "H-A") in got
    assert ("vol-donggang", "household.list", "place", "371102107201") in got
    assert ("admin-1", "household.read", "household", "H-OUT") in got
    # The volunteer's attempt outside the county is audited as a denial, never as a read.
    assert [e[1] for e in got if e[0] == "vol-donggang" and e[3] == "H-OUT"] == \
        ["pages.households_list.get_household.denied"]


def test_job_places_tell_any_role_where_jobs_are(api):
    for role in ("volunteer", "recruiter", "evaluator"):
        body = api.get("/api/v1/job-places?ids=J-PACK,nope,J-SEW", as_=role).get_json()
        assert [(j["job_id"], j["lat"], j["lon"]) for j in body["items"]] == \
            [("J-PACK", 35.50472, 119.26694), ("J-SEW", 35.50472, 119.26694)]
    too_many = ",".join(f"J{i}" for i in range(101))
    resp = api.get(f"/api/v1/job-places?ids={too_many}", as_="volunteer")
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "ids"
    assert api.get("/api/v1/job-places", as_="volunteer").get_json()["error"]["field"] == "ids"


def test_new_endpoints_are_in_the_openapi_document(api):
    paths = api.client.get("/openapi.json").get_json()["paths"]
    assert {"/api/v1/me", "/api/v1/households", "/api/v1/households/{household_id}", "/api/v1/job-places"} <= set(paths)
    assert "post" in paths["/api/v1/households"] and "get" in paths["/api/v1/households"]
