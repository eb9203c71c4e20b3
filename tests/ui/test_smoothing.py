import math

import pytest

from tuitrain.ui.widgets.smoothing import clamp_weight, debiased_ema


def test_zero_weight_is_identity():
    assert debiased_ema([3.0, 1.0, 2.0], 0.0) == [3.0, 1.0, 2.0]


def test_first_value_is_unbiased_and_matches_tensorboard():
    out = debiased_ema([10.0, 0.0, 0.0], 0.6)
    assert out[0] == pytest.approx(10.0)
    # hand computed: last = 4, 2.4, 1.44 ; debias 0.4, 0.64, 0.784
    assert out[1] == pytest.approx(2.4 / 0.64)
    assert out[2] == pytest.approx(1.44 / 0.784)


def test_constant_series_stays_constant():
    assert debiased_ema([5.0] * 50, 0.9) == pytest.approx([5.0] * 50)


def test_nan_passes_through_without_poisoning():
    out = debiased_ema([1.0, float("nan"), 1.0], 0.5)
    assert math.isnan(out[1]) and out[2] == pytest.approx(1.0)


def test_bad_weight_and_clamp():
    with pytest.raises(ValueError):
        debiased_ema([1.0], 1.0)
    assert clamp_weight(1.5) == 0.99 and clamp_weight(-1) == 0.0 and clamp_weight(0.649999) == 0.65
