"""The track record: shrunk outcome rates per worker, job, employer and place, learned without leakage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import factories as f
from matcher import model as m
from matcher.eligibility import KIND, JobArrays, Pairs, WorkerArrays
from matcher.features import FEATURES
from matcher.history import (TRACK_FEATURES, TRACK_INDEX, TrackRecord, out_of_fold,
                             track_features)
from matcher.policy import load_policy
from matcher.ranking import Engine
from matcher.skills import SkillIndex

POLICY = load_policy()


def _world_with_history():
    """Two employers: one job of 陈疃 hires nearly everyone, another of the same employer has no history,
    a third job's employer (another workshop) has none at all."""
    hh = [f.household(household_id=f"H{i}") for i in range(40)]
    workers = [f.worker(f"H{i}", worker_id=f"W{i}") for i in range(40)]
    jobs = [f.job(job_id="JA", employer="陈疃镇扶贫车间", slots=100),
            f.job(job_id="JB", employer="陈疃镇扶贫车间", slots=100),
            f.job(job_id="JC", employer="别的车间", slots=100),
            f.job(job_id="JD", employer="第三车间", slots=100, kind="enterprise", monthly_wage=3500)]
    refs = [f.referral(f"W{i}", "JA", outcome="hired" if i < 36 else "declined") for i in range(40)]
    refs += [f.referral(f"W{i}", "JD", outcome="rejected" if i < 30 else "hired") for i in range(40)]
    return f.world(hh, workers, jobs, refs)


def _arrays(world):
    J = JobArrays.build(world.jobs, SkillIndex())
    W = WorkerArrays.build(world.workers, world.households, POLICY, J.skill_index, J.words)
    return W, J


def test_rates_are_shrunk_towards_the_parent_and_unknown_jobs_borrow_the_employers():
    world = _world_with_history()
    W, J = _arrays(world)
    _, _, p, ref = m.referral_pairs(world, POLICY)
    track = TrackRecord.from_pairs(W, J, p, ref["outcome"].to_numpy(object))
    rows = np.arange(len(J))
    X = track_features(track, W, J, Pairs(np.zeros(len(J), np.int64), rows, np.zeros(len(J))))
    col = TRACK_INDEX
    ja, jb, jc, jd = X
    # JA: 36 hires of 40, shrunk towards its employer's rate (the employer's rate is JA's own history)
    assert ja[col["job_referrals"]] == 40
    assert 0.5 < ja[col["job_hired"]] < 0.9
    assert ja[col["job_hired"]] > jd[col["job_hired"]]
    # JB: no history of its own: its employer's rates, and says it has none
    assert jb[col["job_referrals"]] == 0
    assert jb[col["job_hired"]] == ja[col["employer_hired"]]
    # JC: a new employer: the kind's rate (workshop_factory's, only JA's referrals here)
    assert jc[col["employer_referrals"]] == 0
    kind_rate = track.kind[KIND["workshop_factory"], 0]
    assert jc[col["job_hired"]] == jc[col["employer_hired"]] == kind_rate
    assert 0.5 < kind_rate < 0.9


def test_a_referrals_own_outcome_never_moves_its_training_features(small_world):
    ts = m.training_set(small_world, POLICY)
    rows = np.flatnonzero(ts.open_then)[:3000]
    p = ts.pairs.take(rows)
    outcome = ts.outcome[rows].copy()
    before = out_of_fold(ts.W, ts.J, p, outcome, seed=3)
    busy = np.flatnonzero(np.bincount(p.j)[p.j] >= 10)         # referrals whose job has others
    rng = np.random.default_rng(0)
    for i in rng.choice(busy, 5, replace=False):
        changed = outcome.copy()
        changed[i] = "declined" if outcome[i] == "hired" else "hired"
        after = out_of_fold(ts.W, ts.J, p, changed, seed=3)
        np.testing.assert_array_equal(after[i], before[i])
        # ... while the outcome does reach other referrals of the same job or worker
        same = (p.j == p.j[i]) | (p.w == p.w[i])
        same[i] = False
        assert not np.array_equal(after[same], before[same])


def test_the_artifacts_tables_serve_every_referral_and_measure_on_those_before_the_cut(small_world, track_model_dir):
    model, manifest = m.load(m.production_path(track_model_dir))
    data = manifest["metrics"]["data"]
    assert tuple(model.features) == FEATURES + TRACK_FEATURES
    before, serving = model.track_cut, model.track
    assert before.cut == data["cut"]
    assert before.data_sha256 == serving.data_sha256 == manifest["training_data_sha256"]
    assert before.n_referrals == data["n_train"] == int(before.worker.n.sum()) == int(before.job.n.sum())
    assert serving.n_referrals == data["n_train"] + data["n_test"]
    ts = m.training_set(small_world, POLICY)
    later = ts.dates >= np.datetime64(data["cut"])
    only_later = set(ts.job_ids[later & ts.open_then]) - set(ts.job_ids[~later])
    assert only_later
    assert not only_later & set(before.job.index)          # the held-out referrals are not in what measures them
    assert only_later <= set(serving.job.index)            # but serving knows them
    assert data["track_record"]["before_cut"]["referrals"] == before.n_referrals


def test_serving_scores_a_job_posted_after_training_with_its_employers_track_record(small_world, track_model_dir):
    model, _ = m.load(m.production_path(track_model_dir))
    known = small_world.jobs[small_world.jobs["job_id"].isin(model.track.job.index)].iloc[0]
    new = known.copy()
    new["job_id"], new["status"], new["filled"], new["slots"] = "J-NEW", "open", 0, 5
    jobs = small_world.jobs.copy()
    jobs.loc[len(jobs)] = new
    world = replace(small_world, jobs=jobs.reset_index(drop=True))
    engine = Engine.build(world, model, POLICY)
    sc = engine.score()
    j_new = int(np.flatnonzero(engine.J.ids == "J-NEW")[0])
    mine = sc.pairs.j == j_new
    assert mine.any()
    X = model.matrix(engine.W, engine.J, sc.pairs.take(np.flatnonzero(mine)))
    col = {name: len(FEATURES) + i for i, name in enumerate(TRACK_FEATURES)}
    e = model.track.employer.lookup([known["employer"]])[0]
    assert (X[:, col["job_referrals"]] == 0).all()
    np.testing.assert_array_equal(X[:, col["job_hired"]], model.track.employer.rates[e, 0])
    np.testing.assert_array_equal(sc.score[mine], model.score(X))


def test_previous_model_fits_without_the_track_record(small_world):
    model, metrics = m.fit(small_world, POLICY, track_record=False)
    assert model.track is None and tuple(model.features) == FEATURES
    assert "track_record" not in metrics["data"]


def test_referrals_to_a_job_already_full_are_left_out_of_training_and_test():
    hh = [f.household(household_id=f"H{i}") for i in range(4)]
    workers = [f.worker(f"H{i}", worker_id=f"W{i}") for i in range(4)]
    jobs = [f.job(job_id="J1", slots=1)]
    refs = [f.referral("W0", "J1", referred_on="2026-01-01", outcome="hired"),
            f.referral("W1", "J1", referred_on="2026-01-01", outcome="rejected"),   # same day: not known full
            f.referral("W2", "J1", referred_on="2026-01-02", outcome="rejected"),   # full since the day before
            f.referral("W3", "J1", referred_on="2026-01-03", outcome="declined")]
    world = f.world(hh, workers, jobs, refs)
    ts = m.training_set(world, POLICY)
    assert ts.open_then.tolist() == [True, True, False, False]


@pytest.mark.parametrize("name", ["job_hired", "worker_hired", "employer_hired"])
def test_more_hires_in_a_track_record_never_lower_the_score(track_model_dir, small_world, name):
    model, _ = m.load(m.production_path(track_model_dir))
    ts = m.training_set(small_world, POLICY)
    X = ts.matrix(model, np.arange(300))
    k = len(FEATURES) + TRACK_INDEX[name]
    scores = []
    for v in np.linspace(0, 1, 11):
        Xv = X.copy()
        Xv[:, k] = v
        scores.append(model.score(Xv))
    assert (np.diff(np.array(scores), axis=0) >= -1e-12).all()


def test_the_evaluators_loop_on_the_store(small_world_dir, small_world, prior_model_dir, tmp_path, monkeypatch):
    """Import a world, record outcomes through the API, `matcher train` with no folder, `matcher promote
    PATH` from an empty folder: the new model's track record holds the outcomes just recorded."""
    from click.testing import CliRunner
    from conftest import API_COUNTY, make_api
    from matcher.cli import cli
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    api = make_api(db_url, tmp_path, prior_model_dir, world=small_world)
    try:
        engine = Engine.build(small_world, m.prior_model(), POLICY)
        sc = engine.score()
        in_county = engine.W.county[sc.pairs.w] == API_COUNTY
        picked, seen = [], set()
        for i in np.flatnonzero(in_county & (engine.J.free[sc.pairs.j] >= 3)):
            w, j = str(engine.W.ids[sc.pairs.w[i]]), str(engine.J.ids[sc.pairs.j[i]])
            if w not in seen and j not in {pj for _, pj in picked}:
                picked.append((w, j))
                seen.add(w)
            if len(picked) == 4:
                break
        assert len(picked) == 4
        for w, j in picked:
            ref = api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": w, "job_id": j})
            assert ref.status_code == 201, ref.get_json()
            done = api.patch(f"/api/v1/referrals/{ref.get_json()['referral_id']}", as_="volunteer",
                             json={"outcome": "hired"})
            assert done.status_code == 200, done.get_json()
    finally:
        api.app.extensions["matcher"].dispose()

    empty = tmp_path / "evaluator"
    empty.mkdir()
    monkeypatch.chdir(empty)
    env = {"MATCHER_DATABASE_URL": db_url, "MATCHER_MODELS_DIR": str(empty / "models")}
    runner = CliRunner()
    trained = runner.invoke(cli, ["train", "--track-record", "--out", str(tmp_path / "candidates")], env=env,
                            catch_exceptions=False)
    assert trained.exit_code == 0, trained.output
    path = trained.stdout.strip().splitlines()[-1]
    model, manifest = m.load(path)
    serving, before = model.track, model.track_cut
    history = small_world.referrals
    for w, j in picked:
        had_w = int((history["worker_id"] == w).sum())
        had_j = int((history["job_id"] == j).sum())
        assert serving.worker.n[serving.worker.lookup([w])[0]] == had_w + 1
        assert serving.job.n[serving.job.lookup([j])[0]] == had_j + 1
        # the tables the model is measured with stop at its cut: today's outcomes are held out
        wi = before.worker.lookup([w])[0]
        assert wi < 0 or before.worker.n[wi] <= had_w
    assert manifest["metrics"]["data"]["n_referrals"] == len(history) + len(picked)

    promoted = runner.invoke(cli, ["promote", path], env=env, catch_exceptions=False)
    assert promoted.exit_code == 0, promoted.output
    assert "promoted" in promoted.stdout
    assert m.production_path(empty / "models").name == Path(path).with_suffix(".json").name


def test_training_features_are_the_serving_features_of_the_other_folds_tables(small_world):
    """Out of fold, a referral's columns are exactly what serving computes from a table of the other folds."""
    from matcher.history import FOLDS
    ts = m.training_set(small_world, POLICY)
    p, outcome = ts.pairs, ts.outcome
    X = out_of_fold(ts.W, ts.J, p, outcome, seed=5)
    fold = np.random.default_rng(5).integers(0, FOLDS, len(outcome))
    for k in (0, 3):
        inside = np.flatnonzero(fold == k)
        others = np.flatnonzero(fold != k)
        table = TrackRecord.from_pairs(ts.W, ts.J, p.take(others), outcome[others])
        served = track_features(table, ts.W, ts.J, p.take(inside))
        np.testing.assert_allclose(X[inside], served, rtol=1e-12, atol=1e-12)
