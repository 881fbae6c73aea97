"""The evolving-weights reproductions (seed 001) run end to end in quick mode."""


import pytest
from helpers import reproduce_quick

from mtlkit.lr_schedules import tail_linear_decay


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        (
            "evolving-weights-table1a",
            {"NN1 l=20 u=0 exp40", "NN1 l=20 u=40 lin100", "NN1 l=20 u=40 supervised-only",
             "NN1 l=20 u=40 exp40 (weighted sum)"},
        ),
        ("evolving-weights-table1b", {"NN2 l=20 u=0 exp40", "NN2 l=20 u=40 exp40"}),
    ],
)
def test_quick_mode_writes_error_differences(name, settings, tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("MTLKIT_DATA", data_root)
    result = reproduce_quick(name, tmp_path)
    rows = {r["setting"]: r for r in result["rows"] if r["metric"] == "test_error_diff_pct"}
    assert settings <= set(rows)
    for row in rows.values():
        # The difference is ours minus the baseline of the same seed, from the same initial weights.
        assert row["ours"] == pytest.approx(row["error_pct"] - row["baseline_error_pct"])
        assert row["n_seeds"] == 1
    assert any("1 epoch" in d for d in result["deviations"])
    assert (tmp_path / f"{name.replace('-', '_')}.csv").is_file()


def test_tail_linear_decay_keeps_the_rate_then_ramps_down():
    factor = tail_linear_decay(epochs=5000, decay_epochs=500)
    assert factor(0) == factor(4499) == 1.0
    assert factor(4500) < 1.0 and factor(4999) == pytest.approx(1 / 501)
    assert factor(6000) == 0.0
    with pytest.raises(ValueError, match="decay_epochs"):
        tail_linear_decay(10, 11)
