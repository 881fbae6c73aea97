"""The evolving-weights reproductions (seed 001) run end to end in quick mode."""

import pytest
from helpers import reproduce_quick

from mtlkit.lr_schedules import tail_linear_decay


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        (
            "evolving-weights-table1a",
            {
                "NN1 l=20 u=0 exp40",
                "NN1 l=20 u=40 lin100",
                "NN1 l=20 u=40 supervised-only",
                "NN1 l=20 u=40 exp40 (weighted sum)",
            },
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
    assert any("2 epochs" in d for d in result["deviations"])
    assert (tmp_path / f"{name.replace('-', '_')}.csv").is_file()


def test_tail_linear_decay_keeps_the_rate_then_ramps_down():
    factor = tail_linear_decay(epochs=5000, decay_epochs=500)
    assert factor(0) == factor(4499) == 1.0
    assert factor(4500) < 1.0 and factor(4999) == pytest.approx(1 / 501)
    assert factor(6000) == 0.0
    with pytest.raises(ValueError, match="decay_epochs"):
        tail_linear_decay(10, 11)


def _claim():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "evolving_weights"))
    from evolving_weights_claim import Cell, claim
    from evolving_weights_paper import TABLE_1A, UNLABELED

    return Cell, claim, TABLE_1A, UNLABELED


def _paper_cells(spread: float, schedules=("exp40", "lin100")):
    """The paper's l=100 differences as 3 seeds each, spread ±``spread`` around them."""
    _, _, table, unlabeled = _claim()
    cells = {}
    for name in schedules:
        for u, d in zip(unlabeled, table[100, name], strict=True):
            cells[name, 49_900 if u is None else u] = [d - spread, d, d + spread]
    return cells


def test_claim_accepts_the_papers_own_table_with_small_spread():
    # The old test (> 1 point at every u >= 1000) rejected the paper's u = 1000 cells (-0.85, -0.87).
    _, claim, _, _ = _claim()
    verdict, text = claim(_paper_cells(0.1), {}, min_n=3)
    assert verdict is True, text
    assert "exp40 u=1000: -0.85" in text


def test_claim_rejects_noise_no_gain_and_a_gain_without_data():
    _, claim, _, _ = _claim()
    # Same means, but a spread that puts them within 2 standard errors of 0.
    assert claim(_paper_cells(3.0), {}, min_n=3)[0] is False
    # No gain with unlabeled data.
    flat = {key: [0.1, -0.1, 0.05] for key in _paper_cells(0.1)}
    assert claim(flat, {}, min_n=3)[0] is False
    # A significant gain already at u = 0 contradicts "not when u = 0".
    cells = _paper_cells(0.1)
    cells["exp40", 0] = [-1.0, -1.1, -0.9]
    assert claim(cells, {}, min_n=3)[0] is False
    # Too few seeds: undecided, not a verdict, and each cell says so.
    verdict, text = claim({k: v[:2] for k, v in _paper_cells(0.1).items()}, {}, min_n=3)
    assert verdict is None and "[pending, n < 3]" in text and "not as claimed" not in text


def test_cell_statistics_and_the_control_beside_each_cell():
    Cell, claim, _, _ = _claim()
    cell = Cell.of([-1.0, -2.0, -3.0])
    assert (cell.mean, cell.std, cell.n) == (-2.0, 1.0, 3)
    assert cell.se == pytest.approx(1 / 3**0.5) and cell.beyond_2se and cell.below_2se
    assert not Cell.of([-1.0]).beyond_2se  # one seed has no spread, so no significance
    with pytest.raises(ValueError, match="values"):
        Cell.of([])
    with pytest.raises(ValueError, match="min_n"):
        claim({}, {}, min_n=0)
    _, text = claim(
        _paper_cells(0.1), {1_000: [-0.2, -0.3, -0.1]}, min_n=3, paired={("exp40", 1_000): [-0.6, -0.5, -0.7]}
    )
    assert "control -0.20 ± 0.10 (n=3" in text and "exp40 - control -0.60" in text


def test_gate_quantities_of_a_history():
    _claim()  # puts the example folder on sys.path
    from evolving_weights_setup import _worst, convergence, reconstruction_fall

    # Loss 4 -> 0.1 over 10 epochs, flat at the end: the last epoch moves it by 0.01 = 0.26 % of its fall.
    losses = [4.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.15, 0.12, 0.11, 0.1]
    history = [
        {"train/label/loss": v, "train/reconstruction/loss": r}
        for v, r in zip(losses, [10.0, 6.0, 5.0, 5.5, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0], strict=True)
    ]
    gates = convergence(history)
    assert gates["train_loss_change_last10pct"] == pytest.approx(0.01 / 0.11)
    assert gates["train_loss_change_last10pct_of_fall"] == pytest.approx(0.01 / 3.9)
    # From 20 before training, the DAE cost fell to a quarter, then rose again once the encoder served the
    # supervised task alone (the first epoch's mean, 10, is no "initial value": it holds that epoch's updates).
    assert reconstruction_fall(history, initial=20.0) == pytest.approx(
        {
            "reconstruction_loss_initial": 20.0,
            "reconstruction_loss_min": 5.0,
            "reconstruction_loss_fall": 0.75,
            "reconstruction_loss_fall_final": 0.7,
        }
    )
    # A loss that never fell cannot pass the gate.
    assert (
        convergence([{"train/label/loss": 1.0}, {"train/label/loss": 1.0}])["train_loss_change_last10pct_of_fall"]
        == 1.0
    )
    assert _worst([{"reconstruction_loss_fall": 0.5}, {"reconstruction_loss_fall": 0.2}]) == {
        "reconstruction_loss_fall": 0.2
    }


def test_difference_figure_is_written(tmp_path):
    _claim()
    from evolving_weights_figure import plot_differences

    cells = {("exp40", 0): [0.1, 0.2, 0.0], ("exp40", 1_000): [-0.9, -0.8, -1.0], ("supervised-only", 1_000): [-0.5]}
    path = tmp_path / "diff.png"
    plot_differences(path, cells, {("exp40", 0): 0.03, ("exp40", 1_000): -0.85}, "test")
    assert path.stat().st_size > 1_000
