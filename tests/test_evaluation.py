"""The evaluator's workflow: honest split, model vs baselines, fairness, congestion, the report, the gate."""

import json
import shutil

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import factories as f
from matcher import evaluation as ev
from matcher import model as m
from matcher.cli import main
from matcher.eligibility import JobArrays
from matcher.errors import MatcherError
from matcher.policy import load_policy
from matcher.ranking import Engine
from matcher.schema import World

POLICY = load_policy()


def _fit(world, **kw):
    # One OpenMP thread: on a busy two-core machine more threads make boosting several times slower.
    with threadpool_limits(limits=1):
        return m.fit(world, POLICY, **kw)


@pytest.fixture(scope="module")
def model_path(trained_model_dir):
    return sorted(trained_model_dir.glob("*.joblib"))[0]


@pytest.fixture(scope="module")
def evaluation(small_world, model_path):
    model, manifest = m.load(model_path)
    return ev.evaluate(small_world, POLICY, model, manifest, n_boot=60)


# -- the split ----------------------------------------------------------------------------------

def test_evaluation_tests_on_the_referrals_the_model_did_not_train_on(evaluation, model_path):
    manifest = m.read_manifest(model_path)
    split = evaluation.metrics["split"]
    assert split["cut"] == manifest["metrics"]["data"]["cut"]
    assert split["n_test"] == manifest["metrics"]["data"]["n_test"]
    assert split["n_train"] == manifest["metrics"]["data"]["n_train"]
    assert not [w for w in evaluation.metrics["warnings"] if "training" in w or "overlap" in w]


def test_a_test_split_piled_on_one_day_is_flagged():
    h = f.household(household_id="H1")
    workers = [f.worker("H1", worker_id=f"W{i}") for i in range(70)]
    refs = [f.referral(f"W{i}", "J1", referred_on="2026-03-01" if i < 60 else "2026-02-20",
                       outcome="hired" if i % 3 == 0 else "declined") for i in range(65)]
    world = f.world([h], workers, [f.job(job_id="J1", slots=100)], refs)
    out = ev.evaluate(world, POLICY, m.prior_model(), None, cut="2026-02-15", n_boot=20, audit_recommendations=False)
    assert out.metrics["split"]["n_test"] == 65
    assert any(w.startswith("60 of the 65 test referrals fall on one day (2026-03-01)") for w in out.metrics["warnings"])


def test_a_cut_inside_the_models_training_data_is_refused(small_world, model_path):
    model, manifest = m.load(model_path)
    with pytest.raises(MatcherError, match="overlaps the referrals"):
        ev.evaluate(small_world, POLICY, model, manifest, cut="2025-03-01", audit_recommendations=False)


def test_check_split_on_other_data_warns_instead_of_refusing():
    manifest = {"version": "v1", "kind": "learned", "training_data_sha256": "a" * 64,
                "metrics": {"data": {"cut": "2026-06-01"}}}
    assert ev.check_split(manifest, "a" * 64, "2026-06-01") == []
    assert ev.check_split(manifest, "a" * 64, "2026-07-01") == []
    with pytest.raises(MatcherError, match="use --cut 2026-06-01"):
        ev.check_split(manifest, "a" * 64, "2026-05-31")
    assert "before its training cut" in ev.check_split(manifest, "b" * 64, "2026-05-31")[0]
    whole = {"version": "v2", "kind": "learned", "training_data_sha256": "a" * 64, "metrics": {"data": {"cut": None}}}
    with pytest.raises(MatcherError, match="every referral"):
        ev.check_split(whole, "a" * 64, "2026-06-01")
    assert ev.check_split({"kind": "prior"}, "a" * 64, "2020-01-01") == []


def test_without_a_model_one_is_fitted_on_the_referrals_before_the_cut(small_world):
    with threadpool_limits(limits=1):
        out = ev.evaluate(small_world, POLICY, None, cut="2026-09-01", n_boot=20, audit_recommendations=False)
    assert out.metrics["model"]["trained_cut"] == "2026-09-01"
    assert "fitted here" in out.metrics["model"]["note"]
    dates = small_world.referrals["referred_on"]
    assert out.metrics["split"]["n_test"] == int((dates >= "2026-09-01").sum())


# -- model vs baselines ------------------------------------------------------------------------

def test_every_metric_stands_beside_every_baseline_with_an_interval(evaluation):
    ms = evaluation.metrics
    assert set(ms["metrics"]) == {"auc", "brier", "log_loss", "precision_at_5", "ndcg_at_5", "success_at_1"}
    for name, by in ms["metrics"].items():
        assert set(by) == {"model", "nearest_first", "skill_overlap", "prior"}
        for scorer, v in by.items():
            lo, hi = v["ci"]
            assert lo <= hi, (name, scorer)
            assert lo - 0.05 <= v["value"] <= hi + 0.05, (name, scorer)
        for b in ("nearest_first", "skill_overlap", "prior"):
            c = ms["comparison"][name][b]
            assert c["difference"] == pytest.approx(by["model"]["value"] - by[b]["value"])
            assert c["verdict"] in ("better", "worse", "no clear difference")


def test_the_verdict_follows_the_paired_interval(evaluation):
    ms = evaluation.metrics
    for name, by_b in ms["comparison"].items():
        higher = ev.HIGHER_IS_BETTER[name.split("_at_")[0]]
        for c in by_b.values():
            lo, hi = c["ci"]
            better = lo > 0 if higher else hi < 0
            assert (c["verdict"] == "better") == better
    lines = ms["summary"]["beats"] + ms["summary"]["does_not_beat"]
    assert len(lines) == 6 * 3


def test_the_learned_model_separates_hires_better_than_the_prior(evaluation):
    auc = evaluation.metrics["metrics"]["auc"]
    assert auc["model"]["value"] > auc["prior"]["value"]
    assert auc["model"]["value"] > 0.6


def test_holdout_scores_match_what_the_manifest_measured(evaluation, model_path):
    # The manifest's held-out AUC was computed by model.fit on the same split.
    manifest = m.read_manifest(model_path)
    assert evaluation.metrics["metrics"]["auc"]["model"]["value"] == pytest.approx(
        manifest["metrics"]["holdout"]["model"]["auc"])


# -- fairness and calibration ---------------------------------------------------------------------

def test_calibration_by_group_covers_both_sides_of_every_attribute(evaluation):
    cal = evaluation.metrics["calibration"]["model"]
    n_all = cal["all"]["n"]
    for attr, (yes, no) in ev.GROUPS.items():
        assert cal[attr][yes]["n"] + cal[attr][no]["n"] == n_all
        for side in (yes, no):
            c = cal[attr][side]
            if c["n"]:
                assert 0 <= c["ece"] <= 1
                assert sum(b["n"] for b in c["curve"]) == c["n"]
                assert c["judged"] == (c["n"] >= ev.MIN_GROUP_N)


def test_group_shares_of_eligible_workers_add_up(evaluation):
    shares = evaluation.metrics["recommendations"]["group_shares"]
    for attr, (yes, no) in ev.GROUPS.items():
        for key in ("eligible_workers", "top_k_recommendations", "eligible_candidates", "job_top_k_candidates"):
            assert shares[attr][yes][key] + shares[attr][no][key] == pytest.approx(1.0)


def test_worker_groups_follow_the_policy_4050_ages():
    workers = f.table("workers", [
        f.worker("H", worker_id="W1", sex="F", age=40), f.worker("H", worker_id="W2", sex="F", age=39),
        f.worker("H", worker_id="W3", sex="M", age=50), f.worker("H", worker_id="W4", sex="M", age=49,
                                                                   disability="physical", disability_grade=3),
    ])
    g = ev.worker_groups(workers, POLICY)
    assert g["age_4050"].tolist() == [True, False, True, False]
    assert g["disability"].tolist() == [False, False, False, True]
    assert g["sex"].tolist() == [True, True, False, False]


# -- recommendations, coverage, congestion ------------------------------------------------------

def test_top_k_rows_are_exactly_what_engine_recommend_lists(small_world, model_path):
    model, _ = m.load(model_path)
    engine = Engine.build(small_world, model, POLICY)
    engine.reasons = lambda *args: []          # which rows, not their wording: skip the slow text
    recs = engine.recommend(k=3)
    sc = engine.score()
    rows = ev.top_k_rows(engine.W, engine.J, sc.pairs, sc.score, POLICY, k=3)
    ours = set(zip(engine.W.ids[sc.pairs.w[rows]], engine.J.ids[sc.pairs.j[rows]]))
    assert ours == set(zip(recs["worker_id"], recs["job_id"]))


def test_congestion_by_hand():
    jobs = f.table("jobs", [f.job(job_id="J1", slots=2), f.job(job_id="J2", slots=4, filled=2),
                            f.job(job_id="J3", slots=1), f.job(job_id="J4", status="closed")])
    J = JobArrays.build(jobs)
    # J1 recommended 4 times, J2 twice, J3 never; J4 is closed and not counted.
    out = ev.congestion(J, np.array([0, 0, 0, 0, 1, 1]))
    assert out["open_jobs"] == 3 and out["free_slots"] == 5
    assert out["jobs_recommended_share"] == pytest.approx(2 / 3)
    assert out["candidates_per_free_slot"]["overall"] == pytest.approx(6 / 5)
    assert out["candidates_per_free_slot"]["max"] == pytest.approx(2.0)
    # counts 0, 2, 4: sum |xi - xj| over ordered pairs = 16, 2 n^2 mean = 36
    assert out["gini"] == pytest.approx(16 / 36)


# -- the report -----------------------------------------------------------------------------------

def test_evaluate_command_prints_metrics_and_writes_a_report_with_real_plots(small_world_dir, model_path, tmp_path,
                                                                               capsys):
    import matplotlib.image as mpimg
    out = tmp_path / "report"
    rc = main(["evaluate", str(small_world_dir), "--model", str(model_path), "--report", str(out),
               "--bootstrap", "40"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} == {"metrics.png", "calibration.png", "scores.png", "map.png",
                                      "group_shares.png", "congestion.png"}
    for png in pngs:
        img = mpimg.imread(png)[..., :3]
        assert img.std() > 0.05, png.name
        assert (img.mean(axis=2) < 0.9).mean() > 0.01, f"{png.name} is nearly blank"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert "http://" not in page and "https://" not in page
    assert "Where the model beats a baseline" in page and "Where it does not" in page
    for line in printed["summary"]["beats"][:2] + printed["summary"]["does_not_beat"][:2]:
        assert line.split(":")[0] in page


def test_plots_use_no_characters_the_shipped_fonts_cannot_draw(evaluation):
    import matplotlib.font_manager as fm
    fig = ev.plot_map(evaluation.world, evaluation.recommendations)
    font = fm.FontProperties(family=["sans-serif"])
    path = fm.findfont(font)
    from matplotlib.ft2font import FT2Font
    face = FT2Font(path)
    charmap = face.get_charmap()
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    missing = {ch for t in texts for ch in t if not ch.isspace() and ord(ch) not in charmap}
    assert not missing


# -- the promotion gate ---------------------------------------------------------------------------

def _numbers(auc=0.70, p5=0.30, ece=0.03, n=400, baseline=0.60):
    return {"auc": auc, "precision_at_5": p5,
            "group_ece": {"all": (ece, n), "disabled": (ece, n), "graduates": (0.5, ev.MIN_GROUP_N - 1)},
            "baseline_auc": {"nearest_first": baseline, "skill_overlap": baseline - 0.02, "prior": baseline - 0.01}}


def test_gate_tolerates_small_losses_and_refuses_larger_ones():
    prod = _numbers()
    assert ev.gate(_numbers(auc=0.695, p5=0.285), prod, POLICY).ok
    r = ev.gate(_numbers(auc=0.68), prod, POLICY)
    assert not r.ok and "AUC 0.680 is below production's 0.700 by more than 0.01" in r.message
    r = ev.gate(_numbers(p5=0.27), prod, POLICY)
    assert not r.ok and "precision@5" in r.message


def test_gate_refuses_a_judged_group_calibrated_beyond_the_limit_and_ignores_tiny_groups():
    r = ev.gate(_numbers(ece=0.11), _numbers(), POLICY)
    assert not r.ok and "calibration error for disabled is 0.110" in r.message
    assert "graduates" not in r.message           # ECE 0.5 on too few referrals to judge


def test_first_model_must_beat_every_baseline_on_auc():
    assert ev.gate(_numbers(auc=0.70, baseline=0.60), None, POLICY).ok
    r = ev.gate(_numbers(auc=0.58, baseline=0.60), None, POLICY)
    assert not r.ok and "does not beat the nearest eligible first baseline" in r.message


def test_promote_refuses_a_model_trained_on_shuffled_labels_and_accepts_a_retrained_one(
        small_world, small_world_dir, model_path, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    for p in (model_path, m.manifest_path(model_path)):
        shutil.copy(p, models / p.name)
    good = models / model_path.name
    cut = m.read_manifest(good)["metrics"]["data"]["cut"]
    args = ["--world", str(small_world_dir), "--models-dir", str(models)]

    # No production yet: checked against the baselines and the ECE limit only.
    assert main(["promote", str(good), *args]) == 0
    assert (models / "production").read_text().strip() == m.manifest_path(good).name
    capsys.readouterr()

    # Same referrals, outcomes shuffled: it learns nothing.
    rng = np.random.default_rng(0)
    ref = small_world.referrals.copy()
    ref["outcome"] = rng.permutation(ref["outcome"].to_numpy())
    shuffled_world = World(small_world.households, small_world.workers, small_world.jobs, ref)
    shuffled, metrics = _fit(shuffled_world, cut=cut)
    bad = m.save(shuffled, tmp_path / "candidates", metrics=metrics, data_sha256=m.data_hash(small_world))
    assert main(["promote", str(bad), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"matcher: refused {bad.name}: AUC ")
    assert "below production's" in err[-1]
    assert (models / "production").read_text().strip() == m.manifest_path(good).name

    # Retrained on the real outcomes: as good as production, so it passes and takes over.
    retrained, metrics = _fit(small_world, cut=cut, random_state=1)
    again = m.save(retrained, tmp_path / "candidates", metrics=metrics, data_sha256=m.data_hash(small_world))
    assert main(["promote", str(again), *args]) == 0
    assert (models / "production").read_text().strip() == m.manifest_path(again).name
    assert (models / again.name).is_file()                  # brought into the models folder
    assert m.production_path(models) == models / m.manifest_path(again).name
    m.load(m.production_path(models))                       # and it loads (hash checked)


def test_promote_needs_only_the_path_and_tests_on_the_stores_referrals(small_world, model_path, tmp_path, capsys,
                                                                        monkeypatch):
    from conftest import stored
    url = stored(small_world, tmp_path / "store.db")
    models, empty = tmp_path / "models", tmp_path / "empty"
    models.mkdir()
    empty.mkdir()
    monkeypatch.chdir(empty)                      # no world folder anywhere near
    monkeypatch.setenv("MATCHER_DATABASE_URL", url)
    monkeypatch.setenv("MATCHER_MODELS_DIR", str(models))
    assert main(["promote", str(model_path)]) == 0
    out = capsys.readouterr().out
    checks = json.loads(out[:out.rindex("}") + 1])
    assert checks["n_test"] == len(ev.holdout(small_world, POLICY, m.load(model_path)[0], checks["cut"]).y) > 0
    assert (models / "production").read_text().strip() == m.manifest_path(model_path).name


def test_promote_on_an_empty_store_says_so_in_one_line(model_path, tmp_path, capsys, monkeypatch):
    from matcher.store import init_db
    url = f"sqlite:///{tmp_path / 'store.db'}"
    init_db(url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MATCHER_DATABASE_URL", url)
    assert main(["promote", str(model_path), "--models-dir", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the store holds no world yet" in err[0]


def test_an_unloadable_production_model_does_not_block_its_replacement(small_world_dir, model_path, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    for p in (model_path, m.manifest_path(model_path)):
        shutil.copy(p, models / p.name)
    old = json.loads(m.manifest_path(model_path).read_text(encoding="utf-8"))
    old["version"] = "old-build"
    old["libraries"]["scikit-learn"] = "0.0.1"               # built with a library this service lacks
    (models / "old-build.json").write_text(json.dumps(old), encoding="utf-8")
    m.set_production(models, models / "old-build.json")
    assert main(["promote", str(models / model_path.name), "--world", str(small_world_dir),
                 "--models-dir", str(models)]) == 0
    assert "production model cannot be loaded" in capsys.readouterr().err
    assert (models / "production").read_text().strip() == m.manifest_path(model_path).name

