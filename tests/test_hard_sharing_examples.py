"""The hard-sharing reproductions: seed 000 (pooled MNIST-likes) and seed 003 (CIFAR-100 fine/coarse)."""

import json
import math
import shutil

import pytest
import torch
from helpers import example_modules, reproduce_quick
from torch.nn import functional as F

from mtlkit.experiments import get_experiment
from mtlkit.metrics import paired_gain
from mtlkit.results import failed_gates, validate


@pytest.fixture(scope="module")
def cifar_example():
    with example_modules("cifar100_coarse_fine", "coarse_fine_architectures", "cifar100_coarse_fine") as modules:
        yield modules


@pytest.fixture(scope="module")
def pooled_example():
    with example_modules("pooled_mnist", "pooled_mnist") as (module,):
        yield module


def test_six_architectures_have_matched_parameter_counts(cifar_example):
    arch, example = cifar_example
    for mode, budget in example.BUDGETS.items():
        counts = {name: arch.parameter_count(arch.build(name, budget.widths)) for name in arch.ARCHITECTURES}
        assert len(counts) == 6
        assert max(counts.values()) <= 1.10 * min(counts.values()), (mode, counts)


def test_architectures_share_exactly_what_they_claim(cifar_example):
    arch, example = cifar_example
    widths = example.REDUCED_WIDTHS
    for name in arch.ARCHITECTURES:
        model = arch.build(name, widths)
        assert model.shared_trunk == name.startswith("Shared Conv"), name
        sources = {t: getattr(h, "source_task", None) for t, h in model.heads.items()}
        expected = {"Coarse": {"fine": "coarse", "coarse": None}, "Fine": {"fine": None, "coarse": "fine"}}
        assert sources == expected.get(name.rsplit(" ", 1)[-1], {"fine": None, "coarse": None}), name
        out = model(torch.randn(2, 3, 32, 32))
        assert out["fine"].shape == (2, 100) and out["coarse"].shape == (2, 20)


REUSE = ["Reuse Coarse", "Reuse Fine", "Shared Conv & Reuse Coarse", "Shared Conv & Reuse Fine"]


@pytest.mark.parametrize("name", REUSE)
@pytest.mark.parametrize("detach", [False, True])
def test_reuse_heads_get_the_other_prediction_with_the_configured_gradient(cifar_example, name, detach):
    arch, example = cifar_example
    torch.manual_seed(0)
    model = arch.build(name, example.REDUCED_WIDTHS, detach=detach)
    consumer = "fine" if name.endswith("Coarse") else "coarse"
    source = "coarse" if consumer == "fine" else "fine"
    seen = {}
    model.heads[consumer].register_forward_hook(lambda m, i, o: seen.update(src=i[1]))
    x = torch.randn(3, 3, 32, 32)
    out = model(x)
    torch.testing.assert_close(seen["src"], out[source])
    F.cross_entropy(out[consumer], torch.zeros(3, dtype=torch.long)).backward()
    # The source task's own output layer is touched by the consumer's loss only through the reuse path.
    source_head = model.heads[source]
    grad = [p for n, p in source_head.named_parameters() if n.endswith("weight")][-1].grad
    if detach:
        assert grad is None or grad.abs().sum() == 0
    else:
        assert grad is not None and grad.abs().sum() > 0


# pooled-mnist: 3 single-task + 4 pools x (datasets + pooled row) + 2 controls x 3 + 9 pooled datasets x 2 claims;
# cifar: the selection row + 6 architectures x 3 quantities x 2 tasks + 10 claim comparisons.
@pytest.mark.parametrize(("name", "n_rows"), [("pooled-mnist", 3 + 13 + 6 + 18), ("cifar100-coarse-fine", 1 + 36 + 10)])
def test_quick_mode_writes_every_row(data_root, tmp_path, name, n_rows):
    stale = {"setting": "old protocol", "metric": "test_acc_mnist", "ours": 1.0, "n": 1}
    (tmp_path / f"{name.replace('-', '_')}.json").write_text(
        json.dumps({"schema": 2, "experiment": name.replace("-", "_"), "mode": "quick", "rows": [stale]})
    )
    data = reproduce_quick(name, tmp_path, data_root)
    assert data["mode"] == "quick" and data["deviations"] and data["conclusions"]
    assert validate(data) == []
    assert len(data["rows"]) == n_rows and all(r["setting"] != "old protocol" for r in data["rows"])
    assert all(0 <= r["ours"] <= 100 for r in data["rows"] if r["metric"].startswith(("test_acc", "val_acc")))
    # Resumable per configuration: every planned network finished and was recorded with its CPU time.
    assert sorted(data["progress"]) == sorted(data["planned"]) == sorted(data["per_run"])
    claims = [r for r in data["rows"] if " − " in r["setting"]]
    assert claims and all(r["n"] == len(data["seeds"]) and "beyond_2_standard_errors" in r for r in claims)
    assert {c["name"] for c in data["checks"]} == {g.name for g in get_experiment(name).gates}
    if name == "pooled-mnist":
        table = {(r["setting"], r["metric"]) for r in data["rows"]}
        assert ("F+N+M", "test_acc_notmnist") in table and ("single-task", "test_acc_mnist") in table
        assert ("F+N+M − equal-steps control", "gain_test_acc_fashion_mnist") in table
        assert all((tmp_path / f).is_file() for f in data["figures"])  # relative to the results folder
        nets = [r for r in data["rows"] if r["metric"].startswith(("test_acc", "pooled_test_acc"))]
        assert all(isinstance(r["train_loss_change_last10pct"], float) and "stage2_train_loss_fall" in r for r in nets)
        runs = data["per_run"]
        for k, pool in ((2, "F+N"), (3, "F+N+M")):
            # The control gets exactly the optimiser steps of pre-training + retraining (quick sets are equal-sized).
            assert runs[f"control{k} mnist seed0"]["steps"] == (
                runs[f"pretrain {pool} seed0"]["steps"] + runs[f"retrain {pool} fashion_mnist seed0"]["steps"]
            )
        # A restart retrains nothing: every configuration is skipped, the records are unchanged.
        again = reproduce_quick(name, tmp_path, data_root)
        assert again["per_run"] == data["per_run"] and again["progress"] == data["progress"]
        # A fresh machine: the records survive, the checkpoints do not. Unfinished hand-overs
        # repeat their pre-training, and the t-SNE figure waits for a seed whose checkpoints are on disk.
        shutil.rmtree(tmp_path / "runs")
        lost = json.loads((tmp_path / "pooled_mnist.json").read_text())
        datasets = ("mnist", "notmnist", "fashion_mnist")
        redo = [f"{kind} {d} seed0" for kind in ("retrain F+N+M", "single") for d in datasets]
        for key in ("per_run", "progress"):
            for configuration in redo:
                lost[key].pop(configuration)
        del lost["figures"]
        (tmp_path / "pooled_mnist.json").write_text(json.dumps(lost))
        resumed = reproduce_quick(name, tmp_path, data_root)
        assert sorted(resumed["per_run"]) == sorted(data["per_run"])
        assert resumed["per_run"]["pretrain F+N+M seed0"] == data["per_run"]["pretrain F+N+M seed0"]
        # The repeated pre-training is the first one (bitwise on CPU), so the hand-overs retrain the same nets.
        for configuration in redo:
            assert {**resumed["per_run"][configuration], "cpu_s": 0} == {**data["per_run"][configuration], "cpu_s": 0}
        assert resumed["figures"] and all((tmp_path / f).is_file() for f in resumed["figures"])
        assert resumed["tsne_seed"] == 0
    else:
        assert len(data["parameter_counts"]) == 6
        selection = next(r for r in data["rows"] if r["setting"].startswith("epoch selection"))
        assert selection["chosen_epochs"] >= 2 and len(selection["val_acc_fine_curve"]) == 3
        assert all(r["epochs"] == selection["chosen_epochs"] for r in data["rows"] if "parameters" in r)


def test_pooled_control_schedule_and_paired_gain(pooled_example):
    example = pooled_example
    stages = example.BUDGETS["reduced"].stages
    control = example.control_stages(stages, 3)
    assert sum(n for _, n in control) == 4 * sum(n for _, n in stages)
    assert [lr for lr, _ in control] == [lr for lr, _ in stages] * 2
    with pytest.raises(ValueError, match="k must be"):
        example.control_stages(stages, 0)
    g = paired_gain([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    assert g["gain"] == 1.0 and g["standard_error"] == pytest.approx(1 / 3**0.5)
    assert g["beyond_2_standard_errors"] is False  # 1.0 < 2 x 0.577
    with pytest.raises(ValueError, match="paired"):
        paired_gain([1.0], [1.0, 2.0])


def test_convergence_is_read_on_a_uniform_predictors_scale_and_gates_mark_only_failing_rows(pooled_example):
    example = pooled_example
    flat = {"train_loss": [0.93, 0.2, 0.05, 0.0094, 0.0065], "stage2_train_loss_fall": 0.3, "cpu_s": 1.0}
    moving = {**flat, "train_loss": [2.2, 1.6, 1.2, 0.9, 0.6]}
    runs = {"single mnist seed0": flat, "pretrain F+N+M seed0": moving}
    # Relative to its own value the flat tail moves 31 %; on the ln 10 scale, 0.1 %.
    assert example.last_fraction_change(flat["train_loss"]) > 0.3
    assert example._measured(["single mnist seed0"], runs)["train_loss_change_last10pct"] == pytest.approx(
        (0.0094 - 0.0065) / math.log(10), abs=1e-5
    )
    # A gain row carries the worst of both sides; the pooled net is read on ln 30.
    both = example._measured(["single mnist seed0", "pretrain F+N+M seed0"], runs)["train_loss_change_last10pct"]
    assert both == pytest.approx(0.3 / math.log(30), abs=1e-5)
    rows = [{"setting": "single-task", "metric": "test_acc_mnist", "ours": 99.0,
             **example._measured(["single mnist seed0"], runs)},
            {"setting": "F+N+M − single-task", "metric": "gain_test_acc_mnist", "ours": 0.1,
             **example._measured(["single mnist seed0", "pretrain F+N+M seed0"], runs)}]  # fmt: skip
    checks = {"checks": [gate.evaluate(rows) for gate in example.GATES]}
    assert [failed_gates(checks, r) for r in rows] == [[], [example.GATES[1].name]]


def test_reduced_budgets_meet_the_issue(pooled_example, cifar_example):
    pooled_budget = pooled_example.BUDGETS["reduced"]
    assert pooled_budget.width >= 64 and pooled_budget.n_train >= 15000 and len(pooled_budget.seeds) == 3
    assert len(pooled_budget.stages) == 2
    _, cifar = cifar_example
    budget = cifar.BUDGETS["reduced"]
    assert budget.augment and budget.min_epochs >= 20 and len(budget.seeds) == 3 and budget.quick_images is None
