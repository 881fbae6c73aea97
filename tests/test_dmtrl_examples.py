"""DMTRL reproductions (seed 002): the DMTRLNet builder, per-task batching and the quick runs."""

import shutil

import pytest
import torch
from helpers import example_modules, reproduce_quick
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from mtlkit import LinearHead, MultiTaskModel
from mtlkit.data import ImageDataset, PerTaskBatches
from mtlkit.factorized import CP, LAF, TT, RelativeError, Tucker
from mtlkit.metrics import one_vs_all_error
from mtlkit.nn import DMTRLNet, FactorizedConv2d, FactorizedLinear, PerTask, UserDefinedSharing


def _tiny_lenet(out: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()),
        nn.Linear(3 * 3 * 3, 5),
        nn.Tanh(),
        nn.Linear(5, out),
    )


EXECUTIONS = ["batched", "per_task"]


@pytest.mark.parametrize("execution", EXECUTIONS)
@pytest.mark.parametrize("method", [LAF, Tucker, TT, CP])
def test_exact_factorisation_reproduces_every_single_task_net(method, execution):
    torch.manual_seed(0)
    nets = {f"t{i}": _tiny_lenet() for i in range(4)}
    net = DMTRLNet.from_single_task(nets, method, RelativeError(0.0))
    net.execution = execution
    kinds = [type(layer) for layer in net.layers]
    assert kinds.count(FactorizedConv2d) == 1 and kinds.count(FactorizedLinear) == 2
    x = torch.randn(6, 1, 8, 8)
    outputs = net(x)
    for task, stl in nets.items():
        torch.testing.assert_close(outputs[task], stl(x), atol=1e-5, rtol=1e-4)
    assert list(net(x, tasks=["t2"])) == ["t2"]


@pytest.mark.parametrize("execution", EXECUTIONS)
@pytest.mark.parametrize("method", [LAF, Tucker, TT, CP])
def test_split_tasks_runs_the_convolutions_per_task_with_the_same_outputs(method, execution):
    torch.manual_seed(0)
    nets = {f"t{i}": _tiny_lenet() for i in range(3)}
    fused = DMTRLNet.from_single_task(nets, method, RelativeError(0.1))
    split = DMTRLNet.from_single_task(nets, method, RelativeError(0.1), split_tasks=True)
    fused.execution = split.execution = execution
    x = torch.randn(6, 1, 8, 8)
    expected, outputs = fused(x), split(x)
    for task in nets:
        torch.testing.assert_close(outputs[task], expected[task], atol=1e-5, rtol=1e-4)
    (conv,) = [layer for layer in split.layers if isinstance(layer, FactorizedConv2d)]
    (fused_conv,) = [layer for layer in fused.layers if isinstance(layer, FactorizedConv2d)]
    assert conv.plan.split_tasks and not fused_conv.plan.split_tasks


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_exact_factorisation_through_stacked_convolutions(execution):
    # Channel-wise layers (ReLU, pooling) run on the conv's batch-major buffer; LRN mixes channels
    # and must not: both layouts have to give the single-task nets' outputs.
    torch.manual_seed(0)
    # fmt: off
    nets = {
        f"t{i}": nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.LocalResponseNorm(3),
            nn.Conv2d(4, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 2 * 2, 1),
        )
        for i in range(3)
    }
    # fmt: on
    net = DMTRLNet.from_single_task(nets, TT, RelativeError(0.0))
    net.execution = execution
    x = torch.randn(5, 2, 8, 8)
    for task, stl in nets.items():
        torch.testing.assert_close(net(x)[task], stl(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_heterogeneous_heads_and_ragged_per_task_inputs(execution):
    torch.manual_seed(0)
    nets = {"a": _tiny_lenet(2), "b": _tiny_lenet(7)}
    net = DMTRLNet.from_single_task(nets, Tucker, RelativeError(0.0))
    net.execution = execution
    assert isinstance(net.layers[-1], PerTask)  # output sizes differ: not shareable
    inputs = {"a": torch.randn(3, 1, 8, 8), "b": torch.randn(5, 1, 8, 8)}
    outputs = net(inputs)
    for task, stl in nets.items():
        torch.testing.assert_close(outputs[task], stl(inputs[task]), atol=1e-5, rtol=1e-4)
    outputs["b"].sum().backward()
    assert all(p.grad is not None for p in net.layers[0].parameters())


def test_eps_truncation_compresses_and_errors_are_clear():
    torch.manual_seed(0)
    base = _tiny_lenet()
    nets = {f"t{i}": _tiny_lenet() for i in range(5)}
    for net in nets.values():  # nearly identical tasks: one shared direction suffices
        net.load_state_dict({k: v + 1e-3 * torch.randn_like(v) for k, v in base.state_dict().items()})
    dmtrl = DMTRLNet.from_single_task(nets, LAF, RelativeError(0.1))
    assert all(layer.ranks == (1,) for layer in dmtrl.factorized_layers().values())
    with pytest.raises(ValueError, match="different numbers of layers"):
        DMTRLNet.from_single_task({"a": _tiny_lenet(), "b": nn.Sequential(nn.Linear(2, 1))}, LAF)
    with pytest.raises(ValueError, match="unknown task"):
        dmtrl(torch.randn(2, 1, 8, 8), tasks=["nope"])
    dmtrl.execution = "parallel"
    with pytest.raises(ValueError, match="execution must be"):
        dmtrl(torch.randn(2, 1, 8, 8))


def test_ud_mtl_towers_are_valid_stl_sources():
    towers = UserDefinedSharing([lambda: nn.Linear(4, 3), nn.ReLU, lambda: nn.Linear(3, 1)], 0, ["a", "b"])
    net = DMTRLNet.from_single_task(dict(towers.towers), TT, RelativeError(0.0))
    x = torch.randn(2, 4)
    torch.testing.assert_close(net(x)["a"], towers(x, tasks=["a"])["a"], atol=1e-5, rtol=1e-4)


def test_per_task_batches_visit_every_example_once_with_every_task_each_step():
    sizes = {"a": 11, "b": 3, "c": 7}
    data = {t: ImageDataset(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), {t: torch.arange(n)}) for t, n in sizes.items()}
    batches = PerTaskBatches(data, batch_size=4, seed=1)
    seen = {t: [] for t in sizes}
    for x, y in batches:
        assert set(x) == set(y) == set(sizes)
        for t in sizes:
            assert 1 <= len(y[t]) <= 4 and x[t].shape[0] == len(y[t])
            seen[t] += y[t].tolist()
    assert {t: sorted(v) for t, v in seen.items()} == {t: list(range(n)) for t, n in sizes.items()}
    assert len(batches) == 3


def test_one_vs_all_error_ranks_scores():
    scores = torch.tensor([[0.1, 0.9, -1.0], [2.0, 0.0, 0.0]])
    assert one_vs_all_error(scores, torch.tensor([1, 2])) == 0.5
    with pytest.raises(ValueError):
        one_vs_all_error(scores, torch.tensor([1]))


@pytest.mark.parametrize(
    ("name", "n_rows"),
    [
        ("dmtrl-mnist", 7 * 3),  # 7 methods × 3 metrics at the one quick fraction
        ("dmtrl-params", 3 * 2 + 6 * 3 * 2),  # STL/UD/UD-Large + 6 rank settings × 3 DMTRL nets, × 2 metrics
        ("dmtrl-shallow", 8),
        ("dmtrl-omniglot", 6 + 2 * 3 * 4),  # 6 methods + ρ (2 normalisations × 3 DMTRL nets × 4 layers)
        ("dmtrl-faces", 6 * 2),  # 6 methods × 2 tasks
    ],
)
def test_quick_mode_writes_every_row(data_root, tmp_path, name, n_rows):
    data = reproduce_quick(name, tmp_path, data_root)
    assert data["mode"] == "quick" and data["deviations"] and data["conclusions"]
    assert len(data["rows"]) == n_rows
    assert any(row.get("headline") for row in data["rows"])
    for row in data["rows"]:
        if row["metric"].endswith("_pct"):
            assert 0 <= row["ours"] <= 100
    for figure in data.get("figures", []):
        assert (tmp_path / figure).is_file()


@pytest.mark.parametrize("name", ["dmtrl-mnist", "dmtrl-omniglot", "dmtrl-faces"])
def test_restarted_without_its_checkpoints_retrains_nothing(data_root, tmp_path, name):
    # runs/ is not committed; the results file is. A restart on another machine (or after runs/ is
    # lost) must read every finished configuration back from the file instead of training again.
    first = reproduce_quick(name, tmp_path, data_root)
    shutil.rmtree(tmp_path / "runs")
    again = reproduce_quick(name, tmp_path, data_root)
    assert not list((tmp_path / "runs").rglob("*.pt"))
    assert [(r["setting"], r["metric"], r["ours"]) for r in again["rows"]] == [
        (r["setting"], r["metric"], r["ours"]) for r in first["rows"]
    ]
    assert set(again["progress"]) == set(again["planned"])


@given(epochs=st.integers(2, 500), shares=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4))
def test_lr_milestones_lie_inside_the_run_and_follow_the_shares(epochs, shares):
    with example_modules("dmtrl", "dmtrl_common") as (common,):
        milestones = common.lr_milestones(epochs, shares)
    assert milestones == sorted(set(milestones)) and all(1 <= m <= epochs - 1 for m in milestones)
    assert len(milestones) <= len(shares)
    for share in shares:  # every share has its milestone, within rounding and the clamp
        assert min(abs(m - min(epochs - 1, max(1, share * epochs))) for m in milestones) <= 0.5


def test_lr_milestones_refuse_a_share_outside_the_run_and_a_one_epoch_run_has_none():
    with example_modules("dmtrl", "dmtrl_common") as (common,):
        with pytest.raises(ValueError, match="lr_drops"):
            common.lr_milestones(10, (0.5, 1.0))
        assert common.lr_milestones(1, (0.5,)) == []


def test_train_divides_the_rate_by_ten_at_each_milestone(tmp_path, monkeypatch):
    from mtlkit.experiments import RunContext

    with example_modules("dmtrl", "dmtrl_common", "dmtrl_faces") as (common, faces):
        seen = []
        step = torch.optim.Adam.step

        def recording_step(self, *args, **kwargs):
            seen.append(self.param_groups[0]["lr"])
            return step(self, *args, **kwargs)

        monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
        ctx = RunContext("t", None, "quick", tmp_path, tmp_path, progress=False)
        model = MultiTaskModel(nn.Identity(), {"a": LinearHead(3, 2)})
        batch = (torch.randn(4, 3), {"a": torch.tensor([0, 1, 0, 1])})
        common.train(ctx, model, [batch], {"a": torch.nn.functional.cross_entropy}, 8, 1e-3, tmp_path, 0, (0.5, 0.75))
        assert seen == pytest.approx([1e-3] * 4 + [1e-4] * 2 + [1e-5] * 2)
        # The v3 faces budget: about equal steps at both fractions, capped at 120 epochs.
        reduced = faces.BUDGETS["reduced"]
        assert (reduced.epochs_for(952), reduced.epochs_for(3805), reduced.lr_drops) == (120, 32, (0.5, 0.75))
