"""The service's snapshot: a write changes only what it touched, and gives what a whole build gives."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest



@pytest.fixture(scope="module")
def learned(trained_model_dir):
    from matcher import model as m
    from matcher.api.runtime import LoadedModel
    (manifest,) = sorted(trained_model_dir.glob("*.json"))
    model, info = m.load(manifest)
    return LoadedModel(model, info, str(manifest))


def _imported(world, db_url):
    from matcher.store import import_world, init_db, make_engine
    init_db(db_url)
    eng = make_engine(db_url)
    import_world(eng, world)
    eng.dispose()
    return db_url


def _table_of(snap) -> list[tuple]:
    sc = snap.table.scored
    return sorted(zip(snap.W.ids[sc.pairs.w].astype(str), snap.J.ids[sc.pairs.j].astype(str),
                      np.round(sc.score, 12), np.round(sc.retention, 12)))


def _answers(snap, households) -> str:
    return json.dumps([snap.ranker.household_matches(h, 10) for h in households], sort_keys=True)


def _new_job(small_world, store, job_id, near_worker, **change):
    from matcher.store import io, queries
    row = io.rows_from_frame("jobs", small_world.jobs.iloc[[0]])[0]
    hh = small_world.households.set_index("household_id").loc[
        small_world.workers.set_index("worker_id").at[near_worker, "household_id"]]
    row.update(job_id=job_id, kind="enterprise", lat=float(hh["lat"]) + 0.003, lon=float(hh["lon"]), status="open",
               filled=0, slots=3, min_age=16, max_age=65, physical_demand="light", requires="", **change)
    assert queries.insert_job(store, row)


def _apply(snap, store):
    from matcher import snapshot
    from matcher.store import queries
    rows = queries.changes_since(store, snap.revision, 1000)
    assert rows, "every write adds to the change log"
    return snap.changed(store, snapshot.Changes.of(rows, int(rows[-1]["id"])))


def test_writes_applied_to_a_snapshot_give_what_a_whole_build_gives(db_url, small_world, learned):
    from matcher import snapshot
    from matcher.policy import load_policy
    from matcher.store import make_engine, queries
    store = make_engine(_imported(small_world, db_url))
    policy = load_policy()
    try:
        snap = snapshot.build(store, policy, learned)
        snap = snap.with_table(snapshot.score_every_pair(snap))
        W = snap.W
        seekers = [str(w) for w in W.ids[W.available]]
        near, hired, rejected = seekers[0], seekers[1], seekers[2]
        households = {str(W.household[snap.worker_rows[w]]) for w in (near, hired, rejected)}
        # a job posted near a worker, with skills the vocabulary has; an id that sorts before the others
        _new_job(small_world, store, "J-0NEW", near, skills=small_world.jobs["skills"].iloc[0] and
                 ";".join(small_world.jobs["skills"].iloc[0]))
        # a job retitled and given fewer slots
        jid = str(snap.J.ids[0])
        assert queries.update_job(store, jid, {"title": "新标题", "slots": int(snap.J.frame["filled"].iloc[0]) + 1}) \
            == "ok"
        # a hire (the worker and the job) and a rejection (the worker only)
        sc = snap.ranker.score(np.array([snap.worker_rows[hired], snap.worker_rows[rejected]]))
        for i, (worker, outcome) in enumerate(((hired, "hired"), (rejected, "rejected"))):
            j = str(snap.J.ids[sc.pairs.j[sc.pairs.w == snap.worker_rows[worker]][0]])
            queries.insert_referral(store, f"R-SNAP{i}", worker, j, dt.date(2026, 11, 30), None)
            assert queries.record_outcome(store, f"R-SNAP{i}", outcome,
                                          None if outcome == "hired" else "other", None) == "ok"
        # a worker added to a household
        from matcher.store import io
        worker = io.rows_from_frame("workers", small_world.workers.iloc[[0]])[0]
        worker.update(worker_id="W-0NEW", household_id=str(W.household[snap.worker_rows[near]]), employed=False,
                      wants="job", labour_capacity="full")
        assert queries.insert_row(store, "workers", worker)

        after = _apply(snap, store)
        whole = snapshot.build(store, policy, learned)
        whole = whole.with_table(snapshot.score_every_pair(whole))
        assert after.revision == whole.revision == queries.revision(store)
        assert len(after.J) == len(snap.J) + 1 and len(after.W) == len(snap.W) + 1
        assert not after.in_id_order and whole.in_id_order
        assert _table_of(after) == _table_of(whole)
        sample = sorted(households | {str(h) for h in small_world.households["household_id"].iloc[:40]})
        assert _answers(after, sample) == _answers(whole, sample)
        assert "J-0NEW" in _answers(after, sorted(households))
        # the snapshot a request holds is unchanged by the next one
        assert "J-0NEW" not in snap.job_rows and str(snap.J.title[0]) != "新标题"
        assert after.J.title[after.job_rows[jid]] == "新标题"
        assert not after.W.available[after.worker_rows[hired]]
        # a new skill word: the next snapshot is built whole, with the same answers
        _new_job(small_world, store, "J-0SKILL", near, skills="从未见过的技能")
        again = _apply(after, store)
        assert "从未见过的技能" in again.J.skill_index.names and again.in_id_order
        fresh = snapshot.build(store, policy, learned)
        assert _answers(again, sample) == _answers(fresh, sample)
    finally:
        store.dispose()


def test_every_write_to_the_world_names_its_rows_in_the_change_log(api):
    from matcher.store import make_engine, queries
    store = make_engine(api.app.config["DATABASE_URL"])
    try:
        start = queries.revision(store)
        assert api.patch("/api/v1/jobs/J-SEW", json={"title": "包装"}).status_code == 200
        ref = api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A1", "job_id": "J-SEW"})
        assert ref.status_code == 201, ref.get_json()
        rid = ref.get_json()["referral_id"]
        assert api.patch(f"/api/v1/referrals/{rid}", json={"outcome": "hired"}).status_code == 200
        rows = queries.changes_since(store, start, 100)
        assert [(r["table_name"], r["row_id"], r["worker_id"], r["job_id"]) for r in rows] == [
            ("jobs", "J-SEW", None, "J-SEW"), ("referrals", rid, None, None), ("referrals", rid, "W-A1", "J-SEW")]
        assert queries.revision(store) == rows[-1]["id"] > start
    finally:
        store.dispose()
