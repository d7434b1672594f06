"""Training, the prior scorer, monotonic constraints, artifacts and their manifests."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import factories as f
from matcher import model as m
from matcher.errors import ModelError
from matcher.features import FEATURE_INDEX, FEATURES
from matcher.history import TRACK_FEATURES
from matcher.policy import load_policy

POLICY = load_policy()


def model_matrix(model, world):
    """The matrix the model scores for every referral of the world (track record from its own tables)."""
    ts = m.training_set(world, POLICY)
    return ts.matrix(model, np.arange(len(ts.hired)))


def test_trained_model_beats_both_baselines_on_later_referrals(trained_model_dir):
    manifest = m.read_manifest(m.production_path(trained_model_dir))
    hold = manifest["metrics"]["holdout"]
    assert manifest["kind"] == "learned"
    for baseline in ("nearest_first", "skill_overlap"):
        assert hold["model"]["auc"] > hold[baseline]["auc"]
    assert hold["model"]["auc"] > 0.6
    assert manifest["metrics"]["data"]["n_test"] > 0


@pytest.mark.parametrize("with_track_record", [False, True])
def test_manifest_holds_what_spec_section_6_lists(trained_model_dir, track_model_dir, with_track_record):
    path = m.production_path(track_model_dir if with_track_record else trained_model_dir)
    manifest = json.loads(path.read_text())
    for key in ("version", "created", "libraries", "features", "training_data_sha256", "metrics", "artifact_sha256"):
        assert manifest[key]
    assert manifest["features"] == list(FEATURES + TRACK_FEATURES if with_track_record else FEATURES)
    assert manifest["libraries"]["scikit-learn"]
    model, _ = m.load(path)
    assert model.version == manifest["version"]


def test_probabilities_are_calibrated_and_bounded(trained_model_dir, small_world):
    model, _ = m.load(m.production_path(trained_model_dir))
    ts = m.training_set(small_world, POLICY)
    p = model.score(model_matrix(model, small_world))
    assert ((p >= 0) & (p <= 1)).all()
    # Calibrated on average: predicted and observed hire rates agree within a few points.
    assert abs(p.mean() - ts.hired.mean()) < 0.05


@pytest.mark.parametrize("feature,direction", [("distance_km", -1), ("skill_coverage", 1)])
def test_nearer_job_or_better_skill_match_never_scores_lower(trained_model_dir, small_world, feature, direction):
    model, _ = m.load(m.production_path(trained_model_dir))
    X = model_matrix(model, small_world)[:400].copy()
    X = X[np.isfinite(X[:, FEATURE_INDEX["distance_km"]])]
    grid = np.linspace(0, 15, 16) if feature == "distance_km" else np.linspace(0, 1, 11)
    scores = []
    for v in grid:
        Xv = X.copy()
        Xv[:, FEATURE_INDEX[feature]] = v
        scores.append(model.score(Xv))
    steps = np.diff(np.array(scores), axis=0) * direction
    assert (steps >= -1e-12).all()


def test_prior_scorer_is_used_without_history_and_says_so(tmp_path):
    world = f.world([f.household(household_id="H1")], [f.worker("H1", worker_id="W1")], [f.job(job_id="J1")])
    fitted, metrics = m.fit(world, POLICY)
    assert fitted.kind == "prior"
    assert "at least 200" in metrics["data"]["why_prior"]
    path = m.save(fitted, tmp_path, metrics=metrics, data_sha256=m.data_hash(world))
    assert json.loads(path.with_suffix(".json").read_text())["kind"] == "prior"
    loaded, _ = m.load(path)
    assert 0 < loaded.score(np.zeros((1, len(FEATURES))))[0] < 1


def test_tampered_artifact_is_refused(trained_model_dir, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(trained_model_dir, d)
    path = m.production_path(d)
    artifact = path.with_suffix(".joblib")
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        m.load(path)


def test_artifact_from_other_library_versions_is_refused(trained_model_dir, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(trained_model_dir, d)
    path = m.production_path(d)
    manifest = json.loads(path.read_text())
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="scikit-learn 0.24.2"):
        m.load(path)


def test_missing_or_corrupt_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        m.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        m.load(tmp_path / "bad.json")


def test_production_pointer_wins_over_the_newest_manifest(trained_model_dir, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(trained_model_dir, d)
    first = m.production_path(d)
    newer = d / "29990101T000000000000Z-learned-deadbeef.json"
    shutil.copy(first, newer)
    assert m.production_path(d) == newer
    m.set_production(d, first)
    assert m.production_path(d) == first


def test_train_command_prints_the_artifact_path_last(small_world_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "matcher", "train", str(small_world_dir), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.endswith(".joblib") and (tmp_path / last.split("/")[-1]).exists()
    metrics = json.loads(out.stdout[out.stdout.index("{"): out.stdout.rindex("}") + 1])
    assert metrics["holdout"]["model"]["auc"] > 0.5


def test_train_on_a_missing_folder_fails_with_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "matcher", "train", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1 and "nope" in out.stderr


def test_recommend_command_writes_spec_columns(small_world_dir, trained_model_dir, tmp_path):
    out_csv = tmp_path / "recs.csv"
    model = m.production_path(trained_model_dir)
    out = subprocess.run([sys.executable, "-m", "matcher", "recommend", str(small_world_dir), "--model", str(model),
                          "--k", "5", "--out", str(out_csv)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    import pandas as pd
    recs = pd.read_csv(out_csv)
    assert list(recs.columns) == ["worker_id", "rank", "job_id", "score", "tier", "distance_km", "subsidy_yuan",
                                  "reasons"]
    market = recs[recs.tier == "market"]
    assert market.groupby("worker_id")["rank"].max().max() <= 5
    assert ((recs.score >= 0) & (recs.score <= 1)).all()
    # Ranks within a worker's market list follow the score.
    for _, g in market.groupby("worker_id"):
        assert (np.diff(g.sort_values("rank")["score"].to_numpy()) <= 1e-9).all()


@pytest.mark.parametrize("with_track_record", [False, True])
def test_fast_path_gives_the_pipelines_own_probabilities(trained_model_dir, track_model_dir, small_world,
                                                         with_track_record):
    model, _ = m.load(m.production_path(track_model_dir if with_track_record else trained_model_dir))
    assert isinstance(model._scorer("hire"), m.FastPipeline)
    X = model_matrix(model, small_world)
    np.testing.assert_allclose(model.score(X), model.hire.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    if model.retain is not None:
        np.testing.assert_allclose(model.retention(X), model.retain.predict_proba(X)[:, 1], rtol=0, atol=1e-12)


def test_fast_path_for_many_rows_bins_once_and_gives_the_same_probabilities(trained_model_dir, small_world):
    """Past BINNED_FROM rows the fast path bins the matrix and walks binned trees, in blocks, on the
    threads asked for: the probabilities are the pipeline's, to the bit, whatever the block or thread."""
    model, _ = m.load(m.production_path(trained_model_dir))
    X = model_matrix(model, small_world)
    many = np.vstack([X] * (m.BINNED_FROM // len(X) + 2) + [m.probe_matrix(3000, features=model.features)])
    assert len(many) > m.BINNED_FROM
    expected = model.hire.predict_proba(many)[:, 1]
    one = model.score(many)
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-12)
    fast = model._scorer("hire")
    raw_small = np.concatenate([fast.predict_proba(many[i:i + 1000])[:, 1] for i in range(0, len(many), 1000)])
    np.testing.assert_array_equal(one, raw_small)             # binned and unbinned walks agree exactly
    np.testing.assert_array_equal(model.score(many, threads=2), one)


def test_fast_path_is_refused_for_an_unexpected_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    X = np.nan_to_num(m.probe_matrix(200))
    y = (X[:, 1] > 0.5).astype(int)
    pipe = Pipeline([("clip", m.QuantileClipper()), ("classifier", LogisticRegression(max_iter=500))]).fit(X, y)
    assert m.FastPipeline.verified(pipe, X) is None
    model = m.MatchModel(hire=pipe)
    assert model._scorer("hire") is pipe
    np.testing.assert_allclose(model.score(X), pipe.predict_proba(X)[:, 1])


@pytest.mark.slow
def test_on_the_default_world_the_model_beats_the_baselines_on_auc_and_precision_at_5(tmp_path_factory):
    from matcher.generate import generate_world
    from matcher.schema import load_world
    d = tmp_path_factory.mktemp("default_world")
    generate_world(d, seed=0)
    _, metrics = m.fit(load_world(d), POLICY)
    hold = metrics["holdout"]
    for baseline in ("nearest_first", "skill_overlap"):
        assert hold["model"]["auc"] > hold[baseline]["auc"]
        assert hold["model"]["precision_at_5"] > hold[baseline]["precision_at_5"]


def test_train_with_a_bad_cut_fails_with_one_line_naming_the_option(small_world_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "matcher", "train", str(small_world_dir), "--cut", "garbage",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == ["matcher: Invalid value for '--cut': expected a date YYYY-MM-DD, "
                                               "got 'garbage'"]
    assert not list(tmp_path.iterdir())


def test_train_recommend_and_allocate_read_the_store_when_no_folder_is_given(small_world, trained_model_dir,
                                                                               tmp_path):
    """The store is a world: a bureau runs the verbs on its live data (SPEC section 4)."""
    import pandas as pd
    from conftest import stored
    url = stored(small_world, tmp_path / "store.db")
    env = {**os.environ, "MATCHER_DATABASE_URL": url}
    models = tmp_path / "models"
    out = subprocess.run([sys.executable, "-m", "matcher", "train", "--out", str(models)], capture_output=True,
                         text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    artifact = Path(out.stdout.strip().splitlines()[-1])
    assert m.read_manifest(artifact)["training_data_sha256"] == m.data_hash(small_world)

    model = m.production_path(trained_model_dir)
    recs_store, recs_dir = tmp_path / "store.csv", tmp_path / "dir.csv"
    for args, target in ((["recommend", "--model", str(model), "--k", "3", "--out", str(recs_store)], None),
                         (["allocate", "--model", str(model), "--out", str(tmp_path / "plan.csv")], None)):
        out = subprocess.run([sys.executable, "-m", "matcher", *args], capture_output=True, text=True, timeout=300,
                             env=env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    from matcher.ranking import Engine
    expected = Engine.build(small_world, m.load(model)[0], POLICY).recommend(k=3)
    expected.to_csv(recs_dir, index=False, lineterminator="\n")
    assert recs_store.read_bytes() == recs_dir.read_bytes()
    plan = pd.read_csv(tmp_path / "plan.csv", dtype=str)
    assert len(plan) > 0 and set(plan.worker_id) <= set(small_world.workers.worker_id)


def test_train_on_an_empty_store_says_so_in_one_line(tmp_path):
    from matcher.store import init_db
    url = f"sqlite:///{tmp_path / 'store.db'}"
    init_db(url)
    out = subprocess.run([sys.executable, "-m", "matcher", "train"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MATCHER_DATABASE_URL": url}, cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == ["matcher: the store holds no world yet: pass a world folder, or "
                                               "`matcher db import DIR` first"]
