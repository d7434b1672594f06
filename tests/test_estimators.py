import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from matcher.features import QuantileClipper


@parametrize_with_checks([QuantileClipper(), QuantileClipper(lower=0.1, upper=0.9)])
def test_custom_estimators_pass_scikit_learn_checks(estimator, check):
    check(estimator)


def test_clipper_learns_bounds_and_keeps_missing_values():
    X = np.column_stack([np.arange(1000, dtype=float), np.r_[np.full(999, 2.0), 1e9]])
    X[0, 0] = np.nan
    clip = QuantileClipper(lower=0.01, upper=0.99).fit(X)
    out = clip.transform(X)
    assert np.isnan(out[0, 0])
    assert out[:, 1].max() == 2.0          # a wage typed with extra zeros no longer stretches the range
    assert out[1:, 0].min() >= clip.lower_[0] and out[1:, 0].max() <= clip.upper_[0]
