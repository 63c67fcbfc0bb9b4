"""Running means that never reach into the burn-in (physgrad.training.smoothing)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from physgrad.experiments.runner import final_value, value_at
from physgrad.training.smoothing import running_mean, smoothing_window

values = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=80)


@given(values, st.integers(1, 100))
def test_running_mean_equals_the_direct_mean_of_its_window(vals, window):
    smoothed = running_mean(vals, window)
    for i in range(len(vals)):
        w = smoothing_window(i + 1, window)
        assert 1 <= w <= window and w <= (i + 2) // 2  # never the first half of the run
        np.testing.assert_allclose(smoothed[i], np.mean(vals[i + 1 - w : i + 1]), rtol=1e-9,
                                   atol=1e-6)


def test_a_window_longer_than_the_run_is_cut_and_the_burn_in_is_excluded():
    vals = [1000.0] + [1.0] * 9  # a huge first loss, then flat
    assert final_value(vals, window=64) == 1.0  # the last 5 values, not all 10
    assert value_at(vals, 5, window=64) == 1.0  # at iteration 5: values 3..5
    assert running_mean(vals, 64)[0] == 1000.0  # only the first value exists there


def test_interval_is_the_student_t_interval():
    import pytest

    from physgrad.stats import interval

    mean, lo, hi = interval([1.0, 2.0, 3.0])  # t(0.975, 2) = 4.3027, s = 1, n = 3
    assert mean == 2.0 and hi - mean == pytest.approx(4.302653 / 3**0.5, rel=1e-6)
    assert mean - lo == pytest.approx(hi - mean)
    gmean, glo, ghi = interval([2.0, 8.0], log=True)  # symmetric in log space
    assert gmean == pytest.approx(4.0) and glo * ghi == pytest.approx(16.0)
    with pytest.raises(ValueError, match="at least 2 values"):
        interval([1.0])
