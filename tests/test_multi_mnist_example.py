"""`mtlkit reproduce multi-mnist --mode quick`: every method runs end to end and writes schema-v2 rows."""

import os

import pytest
from helpers import reproduce_quick

from mtlkit.metrics import delta_m
from mtlkit.results import validate

pytestmark = pytest.mark.skipif(
    not os.environ.get("MTLKIT_DATA") or not os.path.isdir(os.path.join(os.environ["MTLKIT_DATA"], "mnist")),
    reason="needs MNIST under MTLKIT_DATA",
)

METHODS = ("EW", "UW", "DWA", "RLW", "GradNorm", "FAMO", "DB-MTL", "MGDA-UB", "PCGrad", "CAGrad", "Nash-MTL",
           "IMTL-G", "Aligned-MTL", "UPGrad")  # fmt: skip


def test_quick_mode_writes_every_method(tmp_path):
    data = reproduce_quick("multi-mnist", tmp_path)
    assert validate(data) == []
    assert data["mode"] == "quick"
    rows = {(r["setting"], r["metric"]): r for r in data["rows"]}
    for task in ("left", "right"):
        assert 0 <= rows[("mnist / STL", f"test_acc_{task}")]["ours"] <= 100
    for method in METHODS:
        setting = f"mnist / {method}"
        assert {("test_acc_left"), ("test_acc_right")} <= {m for s, m in rows if s == setting}
        assert rows[(setting, "time_ratio_vs_EW")]["ours"] > 0
        assert "train_loss_change_last10pct" in rows[(setting, "test_acc_left")]
        # Δm against the same seed's single-task nets, from the per-run accuracies
        delta = rows[(setting, "delta_m_pct")]
        runs = [data["per_run"][f"{v} / seed{s}"] for s in delta["seeds"] for v in (setting, "mnist / STL")]
        expected = [delta_m({t: ours[f"{t}/acc"] for t in ("left", "right")},
                            {t: stl[f"{t}/acc"] for t in ("left", "right")}, {"left": True, "right": True})
                    for ours, stl in zip(runs[::2], runs[1::2], strict=True)]  # fmt: skip
        assert delta["per_repeat"] == pytest.approx(expected, abs=1e-3) and delta["n"] == len(expected) >= 1
    assert rows[("mnist / EW", "time_ratio_vs_EW")]["ours"] == 1.0
    assert set(data["mean_rank_mnist"]) == set(METHODS)
    assert {c["name"] for c in data["checks"]} == {"single-task baseline trains", "training converged"}
    # one figure per dataset that has run, drawn as soon as its configurations finish
    assert data["figures"] == ["figures/multi_mnist_mnist_quick.png"]
    assert (tmp_path / "figures" / "multi_mnist_mnist_quick.png").stat().st_size > 0
