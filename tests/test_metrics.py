"""Each metric against a small case worked out by hand."""

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from matcher import metrics as mx

LOG2_3 = math.log2(3)

def test_roc_auc_by_hand_with_a_tie():
    # hires 0.8, 0.5; non-hires 0.5, 0.2: pairs (0.8>0.5, 0.8>0.2, 0.5=0.5 half, 0.5>0.2) -> 3.5 / 4
    assert mx.roc_auc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2]) == pytest.approx(0.875)
    assert mx.roc_auc([1, 1], [0.3, 0.4]) is None


def test_roc_auc_matches_scikit_learn_with_weights_and_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 1)
    w = rng.integers(0, 4, 300)
    assert mx.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert mx.roc_auc(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w))


# Job A: four referrals, two hired; job B: three, two hired; job C: two (not longer than k=2).
Y = [1, 0, 1, 0, 1, 1, 0, 1, 0]
S = [0.9, 0.8, 0.7, 0.1, 0.5, 0.4, 0.3, 0.9, 0.8]
G = list("AAAABBBCC")


def test_precision_at_k_averages_hires_in_each_long_lists_top_k():
    # A: top two are hired, not hired -> 1/2; B: both hired -> 2/2; C has only k referrals: left out.
    assert mx.precision_at_k(Y, S, G, k=2) == pytest.approx(0.75)
    per = mx.precision_at_k(Y, S, G, k=2, return_groups=True)
    assert per.to_dict() == {"A": 0.5, "B": 1.0}


def test_precision_is_none_when_no_list_is_longer_than_k():
    assert mx.precision_at_k([1, 0], [0.2, 0.1], ["A", "A"], k=2) is None


def test_recall_at_k_is_the_share_of_a_lists_hires_in_its_top_k():
    # A: one of its two hires in the top 2 -> 1/2; B: both -> 1.
    assert mx.recall_at_k(Y, S, G, k=2) == pytest.approx(0.75)


def test_ndcg_at_k_by_hand():
    # A: DCG = 1/log2(2) = 1, ideal (2 hires) = 1 + 1/log2(3); B: both hires first -> 1.
    a = 1 / (1 + 1 / LOG2_3)
    assert mx.ndcg_at_k(Y, S, G, k=2) == pytest.approx((a + 1) / 2)


def test_ndcg_leaves_out_lists_without_a_hire():
    y = [0, 0, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.1, 0.9, 0.8]
    # Only list A (hire at position 4 of 4) counts at k=2: its hire is outside the top 2 -> 0.
    assert mx.ndcg_at_k(y, s, list("AAAABB")[:4] + ["B", "B"], k=2) == 0.0


def test_ndcg_matches_scikit_learn_without_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 30)
    s = rng.random(30)
    y[0] = 1
    expected = ndcg_score([y], [s], k=5)
    assert mx.ndcg_at_k(y, s, ["g"] * 30, k=5) == pytest.approx(expected)


def test_success_at_k_is_the_share_of_households_with_a_hire_in_their_top_k():
    # H1: hire ranked third -> no; H2: hire ranked second -> yes.
    y = [0, 0, 1, 0, 1, 0]
    s = [0.9, 0.2, 0.1, 0.9, 0.8, 0.1]
    assert mx.success_at_k(y, s, list("HHHJJJ"), k=2) == pytest.approx(0.5)


def test_ties_count_by_their_expectation_not_by_the_order_of_the_log():
    # Four referrals with one score, one hire, k=2: the hire is in the top 2 half the time.
    y, s, g = [1, 0, 0, 0], [0.5] * 4, ["g"] * 4
    assert mx.precision_at_k(y, s, g, k=2) == pytest.approx(0.25)
    assert mx.ndcg_at_k(y, s, g, k=2) == pytest.approx((1 + 1 / LOG2_3) / 4)
    # P(at least one hire among 2 drawn of 4 holding 1 hire) = 1 - C(3,2)/C(4,2) = 1/2
    assert mx.success_at_k(y, s, g, k=2) == pytest.approx(0.5)
    # and the log order does not matter
    for metric in (mx.precision_at_k, mx.ndcg_at_k, mx.success_at_k):
        assert metric([0, 0, 0, 1], s, g, k=2) == pytest.approx(metric(y, s, g, k=2))


def test_a_tie_straddling_k_after_a_sure_hire():
    # Scores 0.9 (hired) then three tied at 0.5 (one hired), k=2: the first slot is a hire,
    # the second is one of three tied, a hire with chance 1/3.
    y, s, g = [1, 1, 0, 0], [0.9, 0.5, 0.5, 0.5], ["g"] * 4
    assert mx.precision_at_k(y, s, g, k=2) == pytest.approx((1 + 1 / 3) / 2)
    assert mx.success_at_k(y, s, g, k=2) == 1.0
    ideal = 1 + 1 / LOG2_3
    assert mx.ndcg_at_k(y, s, g, k=2) == pytest.approx((1 + (1 / LOG2_3) / 3) / ideal)


def test_missing_scores_rank_last():
    y, s, g = [1, 0, 0], [float("nan"), 0.2, 0.1], ["g"] * 3
    assert mx.precision_at_k(y, s, g, k=1) == 0.0


def test_calibration_curve_and_ece_by_hand():
    y = [0, 0, 1, 1]
    p = [0.1, 0.1, 0.9, 0.7]
    curve = mx.calibration_curve(y, p, n_bins=10)
    assert curve["bin"].tolist() == [1, 7, 9]
    assert curve["n"].tolist() == [2, 1, 1]
    assert curve["observed_rate"].tolist() == [0.0, 1.0, 1.0]
    # gaps 0.1 (two referrals), 0.3 and 0.1 -> (0.2 + 0.3 + 0.1) / 4
    assert mx.expected_calibration_error(y, p) == pytest.approx(0.15)


def test_ece_is_zero_when_each_bin_hits_its_rate_and_one_score_lands_in_the_top_bin():
    y = [1, 0, 0, 0, 1]
    p = [0.25, 0.25, 0.25, 0.25, 1.0]
    assert mx.expected_calibration_error(y, p) == pytest.approx(0.0)
    assert mx.expected_calibration_error([], []) is None


def test_precision_recall_at_a_threshold():
    out = mx.precision_recall([1, 1, 0, 0, 1], [0.9, 0.1, 0.6, 0.1, 0.15], threshold=0.15)
    # predicted hires: 0.9, 0.6, 0.15 -> 2 of 3 right; hires caught: 2 of 3
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(2 / 3)
    assert mx.precision_recall([0, 1], [0.1, 0.1], threshold=0.5)["precision"] is None


@pytest.mark.parametrize("values, expected", [
    ([1, 1, 1, 1], 0.0),
    ([0, 0, 0, 1], 0.75),          # all on one of four
    ([1, 2, 3, 4], 0.25),          # sum |xi - xj| = 20 over 2 n^2 mean = 80
    ([0, 0, 0, 0], 0.0),
])
def test_gini_by_hand(values, expected):
    assert mx.gini(values) == pytest.approx(expected)
    assert mx.gini(values[::-1]) == pytest.approx(expected)


def test_gini_of_nothing_is_none():
    assert mx.gini([]) is None


def test_bootstrap_weights_resample_every_group_count_and_are_seeded():
    w = mx.bootstrap_weights(7, n_boot=50, seed=1)
    assert w.shape == (50, 7)
    assert (w.sum(axis=1) == 7).all()
    assert (w == mx.bootstrap_weights(7, n_boot=50, seed=1)).all()
    assert not (w == mx.bootstrap_weights(7, n_boot=50, seed=2)).all()


def test_bootstrap_ci_of_a_mean_is_near_the_normal_interval():
    rng = np.random.default_rng(0)
    per_group = rng.normal(10.0, 2.0, 400)
    w = mx.bootstrap_weights(len(per_group), n_boot=1000, seed=0)
    lo, hi = mx.bootstrap_ci(lambda c: mx.weighted_mean(per_group, c), w)
    half = 1.96 * per_group.std() / math.sqrt(len(per_group))
    assert lo < per_group.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)


def test_bootstrap_ci_is_a_point_when_every_group_agrees_and_none_when_undefined():
    w = mx.bootstrap_weights(5, n_boot=20, seed=0)
    assert mx.bootstrap_ci(lambda c: mx.weighted_mean(np.full(5, 0.3), c), w) == pytest.approx((0.3, 0.3))
    assert mx.bootstrap_ci(lambda c: None, w) is None


def test_paired_replicates_give_the_difference_its_own_interval():
    # Two scorers whose per-group values differ by exactly 0.1: the paired difference has
    # no spread even though each has a wide interval.
    rng = np.random.default_rng(1)
    a = rng.random(100)
    w = mx.bootstrap_weights(100, n_boot=200, seed=0)
    ra = mx.bootstrap_replicates(lambda c: mx.weighted_mean(a, c), w)
    rb = mx.bootstrap_replicates(lambda c: mx.weighted_mean(a - 0.1, c), w)
    lo, hi = mx.percentile_interval(ra - rb)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    lo_a, hi_a = mx.percentile_interval(ra)
    assert hi_a - lo_a > 0.05


def test_weighted_mean_ignores_groups_without_a_value():
    assert mx.weighted_mean(np.array([1.0, np.nan, 3.0]), np.array([1, 5, 3])) == pytest.approx(2.5)
    assert mx.weighted_mean(np.array([np.nan]), np.array([2])) is None
