"""mtlkit.metrics.paired_gain: the 2-standard-error verdict behind every claim row."""

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtlkit.metrics import paired_gain

values = st.floats(-100.0, 100.0, allow_nan=False)


@given(st.lists(st.tuples(values, values), min_size=2, max_size=10), values)
def test_gain_is_the_mean_paired_difference_and_shift_free(pairs, shift):
    ours, reference = [a for a, _ in pairs], [b for _, b in pairs]
    g = paired_gain(ours, reference)
    assert g["gain"] == pytest.approx(statistics.fmean(ours) - statistics.fmean(reference), abs=1e-9)
    diffs = [a - b for a, b in pairs]
    assert g["standard_error"] == pytest.approx(statistics.stdev(diffs) / math.sqrt(len(diffs)), abs=1e-9)
    shifted = paired_gain([a + shift for a in ours], [b + shift for b in reference])
    assert shifted["gain"] == pytest.approx(g["gain"], abs=1e-6)


def test_identical_differences_are_beyond_any_spread_and_one_pair_has_no_verdict():
    assert paired_gain([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])["beyond_2_standard_errors"] is True
    assert paired_gain([1.0, 3.0], [2.0, 2.0])["beyond_2_standard_errors"] is False
    assert paired_gain([1.0], [0.0])["beyond_2_standard_errors"] is None


def test_unpaired_inputs_are_refused():
    with pytest.raises(ValueError, match="paired_gain needs equally many"):
        paired_gain([1.0], [1.0, 2.0])
