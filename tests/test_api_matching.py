"""The service's ranking: the same answers as the engine, whether scores are precomputed or not."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import make_api


@pytest.fixture(scope="module")
def learned_model(trained_model_dir):
    from matcher import model as m
    (manifest,) = sorted(trained_model_dir.glob("*.json"))
    return m.load(manifest)[0]


def test_precomputed_scores_give_exactly_the_engines_answers(small_world, learned_model):
    import numpy as np

    from matcher.policy import load_policy
    from matcher.ranking import Engine, ScoreTable
    policy = load_policy()
    base = Engine.build(small_world, learned_model, policy)
    households = np.random.default_rng(0).choice(small_world.households["household_id"], 60, replace=False)
    before = [Engine(base.W, base.J, learned_model, policy).household_matches(h, 10) for h in households]
    table = ScoreTable.build(base.W, base.J, learned_model, policy)
    assert len(table) > 0 and table.scored.retention is not None
    ranker = Engine(base.W, base.J, learned_model, policy, table)
    after = [ranker.household_matches(h, 10) for h in households]
    expected = [base.household_matches(h, 10) for h in households]
    assert json.dumps(after, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert json.dumps(before, sort_keys=True) == json.dumps(expected, sort_keys=True)
    shown = [it for out in after for m in out["members"] for it in m["matches"]]
    assert shown and all(it.get("retention_6m") is not None for it in shown)   # the table's retention too
    workers = small_world.workers["worker_id"].iloc[:40]
    assert [ranker.worker_matches(w, 5) for w in workers] == [base.worker_matches(w, 5) for w in workers]


def test_the_service_answers_the_generated_world_like_the_engine(tmp_path, small_world, trained_model_dir,
                                                                   learned_model):
    from matcher.policy import load_policy
    from matcher.ranking import Engine
    api = make_api(f"sqlite:///{tmp_path / 'g.db'}", tmp_path, trained_model_dir, world=small_world)
    base = Engine.build(small_world, learned_model, load_policy())
    for hid in small_world.households["household_id"].iloc[:15]:
        got = api.get(f"/api/v1/households/{hid}/matches").get_json()
        want = json.loads(json.dumps(base.household_matches(hid, 10)))
        standards = [m.pop("service_standard") for m in got["members"]]      # the service's own (311) counts
        assert got["plan"] == want["plan"] and got["members"] == want["members"]
        assert all(s is None or s["year"] == dt.date.today().year for s in standards)


def test_remembered_answers_are_bounded_and_forgotten_oldest_first(api, monkeypatch):
    from matcher import snapshot
    monkeypatch.setattr(snapshot, "MAX_ANSWER_BYTES", 1)
    first = api.get("/api/v1/households/H-A/matches", as_="volunteer").get_data()
    assert api.get("/api/v1/households/H-B/matches", as_="volunteer").status_code == 200
    snap = api.app.extensions["matcher"].snapshots.peek()
    assert len(snap.answers) == 0 and snap.answers.currsize == 0
    assert api.get("/api/v1/households/H-A/matches", as_="volunteer").get_data() == first


def test_a_remembered_answer_is_dropped_when_the_store_changes(api):
    before = api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json() == before
    api.patch("/api/v1/jobs/J-SEW", json={"title": "新标题"})
    after = api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert {m["job_id"]: m["title"] for m in after["matches"]}["J-SEW"] == "新标题"


@pytest.mark.parametrize("k", ["5.0", "+5", " 5 ", "5_0", "５", "0x5", "5e0"])
def test_k_must_be_written_as_an_integer(api, k):
    from urllib.parse import quote
    resp = api.get(f"/api/v1/workers/W-A1/matches?k={quote(k)}", as_="volunteer")
    assert resp.status_code == 422
    assert resp.get_json()["error"]["field"] == "k"
    resp = api.get(f"/api/v1/jobs?page={quote(k)}", as_="volunteer")
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "page"
    assert api.get("/api/v1/workers/W-A1/matches?k=5", as_="volunteer").status_code == 200
