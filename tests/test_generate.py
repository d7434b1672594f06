"""The synthetic Rizhao world: contract, calibration, determinism, and a learnable hidden process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from matcher import divisions, schema, skills
from matcher import __version__
from matcher import generate as gen
from matcher.generate import ARTICLE_WORKSHOPS, DEFAULT_HOUSEHOLDS, generate_world, load_truth
from matcher.geo import haversine_km

FILES = ("households.csv", "workers.csv", "jobs.csv", "referrals.csv", "README.md", "generator.json")


@pytest.fixture(scope="module")
def default_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "seed0"
    summary = generate_world(out, seed=0)
    return out, summary, schema.load_world(out)


@pytest.fixture(scope="module")
def referral_pairs(default_world):
    """Referrals joined to their worker, household and job, with coverage and distance."""
    _, _, w = default_world
    hh = w.households.rename(columns={c: f"home_{c}" for c in w.households.columns if c != "household_id"})
    m = (w.referrals.merge(w.workers, on="worker_id")
         .merge(hh, on="household_id")
         .merge(w.jobs, on="job_id", suffixes=("_worker", "_job")))
    m["coverage"] = [skills.coverage(a, b)[0] for a, b in zip(m["skills_worker"], m["skills_job"])]
    m["needs_skill"] = m["skills_job"].map(len) > 0
    m["distance_km"] = haversine_km(m["home_lat"], m["home_lon"], m["lat"], m["lon"])
    m["hired"] = m["outcome"] == "hired"
    return m


def _within(value, target, rel=0.01):
    return abs(value - target) <= rel * target


# -- contract and calibration --------------------------------------------------------------------

def test_world_loads_through_the_schema_and_matches_its_summary(default_world):
    out, summary, w = default_world
    assert {p.name for p in out.iterdir()} == set(FILES)
    assert summary["households"] == len(w.households) == DEFAULT_HOUSEHOLDS
    assert summary["workers"] == len(w.workers)
    assert summary["jobs"] == len(w.jobs)
    assert summary["referrals"] == len(w.referrals)
    assert summary["hired"] == int((w.referrals["outcome"] == "hired").sum())


def test_default_world_reproduces_the_article(default_world):
    _, _, w = default_world
    wk = w.workers
    able_willing = (wk["labour_capacity"] != "none") & wk["wants"].isin(["job", "business"])
    business = able_willing & (wk["wants"] == "business")
    assert _within(len(wk), 10_619)
    assert _within(int(able_willing.sum()), 3_008)
    assert _within(int(business.sum()), 233)


def test_households_live_in_real_villages_of_their_town_and_county(default_world):
    _, _, w = default_world
    hh = w.households
    vil = divisions.villages().set_index("village_code")
    with_village = hh[hh["village_code"] != ""]
    assert len(with_village) / len(hh) > 0.97
    assert with_village["village_code"].isin(vil.index).all()
    assert (vil.loc[with_village["village_code"], "town_code"].to_numpy() == with_village["town_code"].to_numpy()).all()
    assert hh["town_code"].isin(divisions.townships()["town_code"]).all()
    assert divisions.on_land(hh["lat"], hh["lon"]).all()
    # a household sits near its village's point
    d = haversine_km(with_village["lat"], with_village["lon"], vil.loc[with_village["village_code"], "lat"],
                     vil.loc[with_village["village_code"], "lon"])
    assert d.max() < 1.0


def test_workers_are_plausible_rural_poor(default_world):
    _, _, w = default_world
    wk = w.workers
    assert wk["age"].between(16, 64).all()
    assert wk["age"].median() >= 45                     # skewed older
    disabled = wk["disability"] != "none"
    assert 0.10 <= disabled.mean() <= 0.15
    assert wk.loc[disabled, "disability_grade"].between(1, 4).all()
    assert wk.loc[~disabled, "disability_grade"].isna().all()
    grads = wk[wk["graduate"]]
    assert 0 < len(grads) < 0.01 * len(wk)
    assert (grads["education"] == "college").all() and grads["age"].between(21, 30).all()
    assert 0.6 < wk["max_commute_km"].isna().mean() < 0.9
    assert wk["skills"].map(len).gt(0).mean() > 0.5
    young_men = wk[(wk["sex"] == "M") & (wk["age"] < 35) & (wk["labour_capacity"] != "none")]
    older = wk[(wk["age"] >= 50) & (wk["labour_capacity"] != "none")]
    assert young_men["will_migrate"].mean() > older["will_migrate"].mean() + 0.2
    seekers = wk[(wk["labour_capacity"] != "none") & (wk["wants"] == "job")]
    assert 0.0 < seekers["employed"].mean() < 0.2
    assert 0.0 < seekers["home_only"].mean() < 0.15


def test_worker_skills_are_written_as_people_write_them(default_world):
    _, _, w = default_world
    tags = pd.Series([t for ts in w.workers["skills"] for t in ts])
    canonical = {s.name for s in skills.VOCABULARY}
    assert tags.isin(canonical).mean() < 0.6                        # mostly variants
    assert tags.map(str.isascii).any()                              # some English
    assert (tags.map(skills.normalise).isin(canonical)).mean() > 0.9  # that normalise back


# -- jobs ----------------------------------------------------------------------------------------

def test_all_five_kinds_and_the_three_workshops_of_the_article(default_world):
    _, _, w = default_world
    jobs = w.jobs
    assert set(jobs["kind"]) == set(schema.JOB_KINDS)
    named = {ws["employer"] for ws in ARTICLE_WORKSHOPS}
    assert set(jobs.loc[jobs["employer"].str.contains("扶贫车间"), "employer"]) == named
    assert (jobs.loc[jobs["employer"].isin(named), "status"] == "open").all()


def test_public_welfare_posts_serve_a_village_for_a_small_subsidy(default_world):
    _, _, w = default_world
    pw = w.jobs[w.jobs["kind"] == "public_welfare"]
    assert (pw["town_code"] != "").all() and (pw["village_code"] != "").all()
    assert pw["monthly_wage"].between(500, 800).all()
    assert (pw["max_age"] >= 65).all()
    assert pw["title"].str.contains("保洁|保绿").all()


def test_jobs_wages_places_and_slots_are_consistent(default_world):
    _, summary, w = default_world
    jobs = w.jobs
    assert (jobs["filled"] <= jobs["slots"]).all()
    ooc = jobs["kind"] == "out_of_county"
    assert jobs.loc[ooc, "lat"].isna().all() and (jobs.loc[ooc, "county_code"] == "").all()
    assert jobs.loc[~ooc, "lat"].notna().all()
    wage = jobs.groupby("kind")["monthly_wage"].median()
    assert wage["public_welfare"] < wage["workshop_factory"] < wage["enterprise"] < wage["out_of_county"]
    assert 0.7 < (jobs["status"] == "open").mean() < 0.95
    free = ((jobs["slots"] - jobs["filled"]) * (jobs["status"] == "open")).sum()
    assert free == summary["free_slots"]
    assert 1.0 <= free / summary["job_seekers"] <= 1.5                # enough, but scarce
    office = jobs["title"].isin(["会计文员", "客服专员"])
    assert jobs.loc[office, "requires"].map(lambda r: "literacy" in r).all()


# -- referrals and the hidden process ------------------------------------------------------------

def test_referrals_point_at_real_workers_and_jobs_with_plausible_outcomes(default_world, referral_pairs):
    _, _, w = default_world
    ref = w.referrals
    seekers = w.workers[(w.workers["labour_capacity"] != "none") & (w.workers["wants"] == "job")]
    assert 3 * len(seekers) <= len(ref) <= 5 * len(seekers)
    assert ref["referral_id"].is_unique
    assert ref["worker_id"].isin(seekers["worker_id"]).all()
    assert not ref.duplicated(["worker_id", "job_id"]).any()
    assert ref["referred_on"].between("2024-11-01", "2026-10-31").all()
    shares = ref["outcome"].value_counts(normalize=True)
    assert set(shares.index) == set(schema.OUTCOMES)
    assert 0.15 <= shares["hired"] <= 0.60
    assert (referral_pairs["referred_on"] >= referral_pairs["posted_on"]).all()


def test_retention_is_known_only_for_hires_whose_six_months_have_passed(default_world):
    _, _, w = default_world
    ref = w.referrals
    hired = ref["outcome"] == "hired"
    due = ref["referred_on"] <= pd.Timestamp("2026-11-01") - pd.Timedelta(days=183)
    assert ref.loc[hired & due, "retained_6m"].notna().all()
    assert ref.loc[~(hired & due), "retained_6m"].isna().all()
    assert 0.5 < ref.loc[hired & due, "retained_6m"].astype(bool).mean() < 0.95


def test_hires_never_exceed_a_jobs_slots(default_world):
    _, _, w = default_world
    hires = w.referrals[w.referrals["outcome"] == "hired"].groupby("job_id").size()
    jobs = w.jobs.set_index("job_id")
    assert (hires <= jobs.loc[hires.index, "filled"]).all()


def test_full_skill_coverage_is_hired_more_often_than_none(referral_pairs):
    m = referral_pairs[referral_pairs["needs_skill"]]
    full = m.loc[m["coverage"] == 1.0, "hired"].mean()
    none = m.loc[m["coverage"] == 0.0, "hired"].mean()
    assert full > none + 0.1
    rejected = m["outcome"] == "rejected"
    assert rejected[m["coverage"] == 0.0].mean() > rejected[m["coverage"] == 1.0].mean() + 0.1


def test_nearer_jobs_are_hired_more_often_and_far_ones_declined(referral_pairs):
    m = referral_pairs[referral_pairs["kind"].isin(["workshop_factory", "enterprise"])]
    near = m[m["distance_km"] <= 5]
    far = m[m["distance_km"] > 15]
    assert near["hired"].mean() > far["hired"].mean() + 0.1
    assert (far["outcome"] == "declined").mean() > (near["outcome"] == "declined").mean() + 0.2


def test_the_hidden_process_is_learnable_beyond_simple_baselines(referral_pairs):
    """A plain logistic model on observable pair features, trained on the first 75% of the
    history, ranks later referrals clearly better than nearest-first or skill overlap alone."""
    m = referral_pairs
    d = m["distance_km"].fillna(0.0)
    kind = pd.get_dummies(m["kind"]).astype(float)
    feats = pd.DataFrame({
        "missing_skill": 1.0 - m["coverage"], "distance": d, "wage": m["monthly_wage"] / 1000,
        "age_over_45": np.maximum(0, m["age"] - 45),
        "age_out": np.maximum(0, m["min_age"] - m["age"]) + np.maximum(0, m["age"] - m["max_age"]),
        "disabled": m["disability"] != "none",
        "beyond_commute": np.maximum(0, d - m["max_commute_km"].fillna(15.0)),
        "home_only_elsewhere": m["home_only"] & (m["kind"] != "workshop_home"),
        "unwilling_migrant": ~m["will_migrate"] & (m["kind"] == "out_of_county"),
    }).astype(float)
    feats = pd.concat([feats, kind, kind.mul(feats["missing_skill"], axis=0).add_prefix("missing_"),
                       kind.mul(d, axis=0).add_prefix("distance_")], axis=1)
    y = m["hired"].to_numpy()
    train = (m["referred_on"] < m["referred_on"].quantile(0.75)).to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(feats[train], y[train])
    auc_model = roc_auc_score(y[~train], model.predict_proba(feats[~train])[:, 1])
    auc_nearest = roc_auc_score(y[~train], -d[~train])
    auc_skill = roc_auc_score(y[~train], m["coverage"][~train])
    assert auc_model > 0.64
    assert auc_model > max(auc_nearest, auc_skill) + 0.05


# -- determinism, scale, CLI ---------------------------------------------------------------------

def test_same_seed_gives_byte_identical_files(default_world, tmp_path):
    out, _, _ = default_world
    generate_world(tmp_path / "again", seed=0)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name


def test_different_seeds_give_different_worlds(tmp_path):
    a = generate_world(tmp_path / "a", households=700, seed=1)
    b = generate_world(tmp_path / "b", households=700, seed=2)
    assert a["workers"] == b["workers"]                  # same calibration...
    for name in ("households.csv", "workers.csv", "jobs.csv", "referrals.csv"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes(), name


def test_ten_times_the_households_scales_every_count(tmp_path):
    summary = generate_world(tmp_path / "x10", households=10 * DEFAULT_HOUSEHOLDS, seed=5)
    assert summary["households"] == 68_000
    assert _within(summary["workers"], 106_190)
    assert _within(summary["able_and_willing"], 30_080)
    assert _within(summary["want_business"], 2_330)
    assert 8 * 848 <= summary["jobs"] <= 12 * 848
    assert 3 * summary["able_and_willing"] <= summary["referrals"] <= 5 * summary["able_and_willing"]
    header, *rows = (tmp_path / "x10" / "workers.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == summary["workers"]


def test_tiny_worlds_still_load(tmp_path):
    for n in (1, 3, 40):
        summary = generate_world(tmp_path / f"n{n}", households=n, seed=0)
        world = schema.load_world(tmp_path / f"n{n}")
        assert len(world.households) == n == summary["households"]


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    generate_world(tmp_path / "p", households=50, seed=0, progress=True)
    captured = capsys.readouterr()
    assert "generate" in captured.err and captured.out == ""


def test_generate_command_writes_a_loadable_world(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "matcher", "generate", "--out", str(out), "--seed", "1"],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert "workers: 10619" in proc.stdout
    assert len(schema.load_world(out).workers) == 10_619


# -- the truth -----------------------------------------------------------------------------------

def test_generator_file_names_the_seed_size_and_version(default_world):
    out, _, _ = default_world
    import json
    assert json.loads((out / "generator.json").read_text(encoding="utf-8")) == {
        "seed": 0, "households": DEFAULT_HOUSEHOLDS, "matcher_version": __version__}


def test_truth_gives_exactly_the_probabilities_the_history_was_drawn_with(tmp_path, monkeypatch):
    drawn = []
    real = gen._stage_logits

    def spy(pr, W, J, motivation, q):
        a, s, h = real(pr, W, J, motivation, q)
        drawn.append((pr.wi.copy(), pr.ji.copy(), gen._sigmoid(a) * gen._sigmoid(s) * gen._sigmoid(h)))
        return a, s, h

    monkeypatch.setattr(gen, "_stage_logits", spy)
    generate_world(tmp_path / "w", households=1500, seed=7)
    monkeypatch.undo()
    (wi, ji, p_drawn), = drawn
    world = schema.load_world(tmp_path / "w")
    truth = load_truth(tmp_path / "w")
    # the history's rows are the drawn pairs, in order
    assert (world.referrals["worker_id"].to_numpy() == world.workers["worker_id"].to_numpy()[wi]).all()
    assert (world.referrals["job_id"].to_numpy() == world.jobs["job_id"].to_numpy()[ji]).all()
    p = truth.hire_probability(world.referrals["worker_id"], world.referrals["job_id"])
    assert np.array_equal(p, p_drawn)


def test_truths_mean_matches_the_observed_hire_rate_where_slots_cannot_bind(default_world):
    out, _, w = default_world
    r = w.referrals
    truth = load_truth(out)
    p = truth.hire_probability(r["worker_id"], r["job_id"])
    # where a job had no more referrals than slots, no hire was turned into a rejection
    per_job = r["job_id"].map(r.groupby("job_id").size())
    free = (per_job <= r["job_id"].map(w.jobs.set_index("job_id")["slots"])).to_numpy()
    hired = (r["outcome"] == "hired").to_numpy()
    se = np.sqrt((p[free] * (1 - p[free])).sum()) / free.sum()
    assert free.sum() > 1000
    assert abs(p[free].mean() - hired[free].mean()) < 3 * se
    # and it ranks: the truth separates hires from the rest far better than chance
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(hired[free], p[free]) > 0.75


def test_truth_covers_every_pair_of_the_world_eligible_or_not(default_world):
    out, _, w = default_world
    truth = load_truth(out)
    workers = w.workers["worker_id"].to_numpy()[:50]
    jobs = w.jobs["job_id"].to_numpy()[:50]
    p = truth.hire_probability(np.repeat(workers, 50), np.tile(jobs, 50))
    assert p.shape == (2500,) and ((p > 0) & (p < 1)).all()
    with pytest.raises(ValueError, match="W999999"):
        truth.hire_probability(["W999999"], [jobs[0]])


def test_no_truth_for_folders_not_generated_by_this_version(tmp_path, default_world):
    out, _, _ = default_world
    assert load_truth(tmp_path) is None
    other = tmp_path / "other"
    other.mkdir()
    (other / "generator.json").write_text('{"seed": 0, "households": 10, "matcher_version": "0.0.0"}')
    assert load_truth(other) is None
    (other / "generator.json").write_text("not json")
    assert load_truth(other) is None


# -- divisions -----------------------------------------------------------------------------------

def test_divisions_mark_which_coordinates_are_known():
    c, t, v = divisions.counties(), divisions.townships(), divisions.villages()
    assert len(c) == 5 and len(t) == 56 and len(v) == 1_679
    assert (t["coord_source"] == "exact").sum() == 8
    assert set(c.loc[c["coord_source"] == "approximate", "county_code"]) == {"371171"}
    assert (v["coord_source"] == "approximate").all()
    for frame in (c, t, v):
        assert divisions.on_land(frame["lat"], frame["lon"]).all()
    known = t.set_index("town_code").loc["371102107"]          # 陈疃镇, from GeoNames
    assert (known["lat"], known["lon"]) == (35.50472, 119.26694)


def test_placed_points_stay_inside_their_county_and_never_move():
    c = divisions.counties().set_index("county_code")
    t = divisions.townships()
    d = haversine_km(t["lat"], t["lon"], c.loc[t["county_code"], "lat"], c.loc[t["county_code"], "lon"])
    placed = (t["coord_source"] == "approximate").to_numpy()
    assert (d[placed] <= c.loc[t["county_code"][placed], "radius_km"].to_numpy() + 1e-6).all()
    zone = c.loc["371171"]
    donggang = c.loc["371102"]
    assert haversine_km(zone["lat"], zone["lon"], donggang["lat"], donggang["lon"]) < donggang["radius_km"]
    divisions._townships.cache_clear()
    divisions._villages.cache_clear()
    again = divisions.villages()
    pd.testing.assert_frame_equal(again, divisions.villages())
    assert (again[["lat", "lon"]].to_numpy() == divisions._villages()[["lat", "lon"]].to_numpy()).all()


# -- names -------------------------------------------------------------------------------------

def test_generated_names_are_plausible_chinese_names(default_world):
    from matcher.names import SURNAMES
    _, _, w = default_world
    names = w.workers["name"]
    assert names.map(len).between(2, 3).all() and names.str[0].isin(list(SURNAMES)).all()
    assert names.nunique() > len(names) // 20           # not a handful of names over and over
    heads = w.households["head_name"]
    assert (heads != "").all() and (w.households["phone"] == "").all()   # no made-up phone numbers
    # The head of a household with members is one of them, and the household's members mostly share a surname.
    members = w.workers.groupby("household_id")["name"].apply(set)
    with_members = heads[w.households["household_id"].isin(members.index)]
    ids = w.households["household_id"][with_members.index]
    assert all(h in members[i] for h, i in zip(with_members, ids))
    men = w.workers[w.workers["sex"] == "M"].merge(w.households, on="household_id")
    assert (men["name"].str[0] == men["head_name"].str[0]).mean() > 0.9


def test_names_come_from_their_own_stream_and_leave_every_other_column_as_it_was(tmp_path, monkeypatch):
    from matcher import names
    generate_world(tmp_path / "named", households=300, seed=4)
    generate_world(tmp_path / "named_again", households=300, seed=4)
    monkeypatch.setattr(names, "add_synthetic_names", lambda *args, **kw: None)
    generate_world(tmp_path / "nameless", households=300, seed=4)
    for name in ("households.csv", "workers.csv", "jobs.csv", "referrals.csv"):
        named = (tmp_path / "named" / name).read_bytes()
        assert named == (tmp_path / "named_again" / name).read_bytes(), name      # deterministic by seed
        with_names = pd.read_csv(tmp_path / "named" / name, dtype=str, keep_default_na=False)
        without = (tmp_path / "nameless" / name).read_text(encoding="utf-8")
        kept = with_names.drop(columns=[c for c in ("head_name", "phone", "name") if c in with_names.columns])
        assert kept.to_csv(index=False, lineterminator="\n") == without, name
    assert "head_name" in (tmp_path / "named" / "households.csv").read_text(encoding="utf-8").splitlines()[0]
