"""UD-MTL builder and the App. B parameter counts of the modified LeNet (MNIST, 10 tasks)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlkit.factorized import LAF, TT, Ranks, Tucker
from mtlkit.nn import FactorizedConv2d, FactorizedLinear, UserDefinedSharing, count_parameters

TASKS = [f"digit{d}" for d in range(10)]


def _pooled(size: int, kernel: int) -> int:
    return (size - kernel + 1) // 2  # 'valid' conv, then 2×2 max-pool (floor)


FLATTEN = 64 * _pooled(_pooled(28, 5), 4) ** 2  # 28 → 24 → 12 → 9 → 4: 64·4·4 = 1024


def modified_lenet() -> list:
    """Paper Sec. 4.1: conv 32@5×5 → pool → conv 64@4×4 → pool → FC 512 → FC 1 (ReLU)."""
    return [
        lambda: nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2)),
        lambda: nn.Sequential(nn.Conv2d(32, 64, 4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()),
        lambda: nn.Sequential(nn.Linear(FLATTEN, 512), nn.ReLU()),
        lambda: nn.Linear(512, 1),
    ]


def test_stl_parameter_count_of_the_modified_lenet_follows_from_the_architecture() -> None:
    stl = UserDefinedSharing(modified_lenet(), num_shared=0, task_names=TASKS)
    outputs = stl(torch.zeros(2, 1, 28, 28))  # the flatten size is right for 28×28 inputs
    assert all(out.shape == (2, 1) for out in outputs.values())
    per_task = (32 * 1 * 5 * 5 + 32) + (64 * 32 * 4 * 4 + 64) + (FLATTEN * 512 + 512) + (512 + 1)
    assert per_task == 558_977
    assert count_parameters(stl) == 10 * per_task == 5_589_770
    # The paper's App. B lists 4351K; see docs/factorized.rst for why our derivation differs.


def test_ud_mtl_shares_the_first_three_layers() -> None:
    ud = UserDefinedSharing(modified_lenet(), num_shared=3, task_names=TASKS)
    shared = (32 * 25 + 32) + (64 * 32 * 16 + 64) + (FLATTEN * 512 + 512)
    assert count_parameters(ud) == shared + 10 * 513 == 563_594


def test_dmtrl_lenet_count_is_the_sum_of_factor_counts() -> None:
    conv1 = FactorizedConv2d(1, 32, 5, 10, Tucker, rule=Ranks(5, 5, 1, 16, 5))
    conv2 = FactorizedConv2d(32, 64, 4, 10, TT, rule=Ranks(4, 16, 32, 8))
    fc1 = FactorizedLinear(FLATTEN, 512, 10, LAF, Ranks(6))
    fc2 = FactorizedLinear(512, 1, 10, Tucker, Ranks(8, 1, 3))
    model = nn.ModuleList([conv1, conv2, fc1, fc2])
    expected = (
        Tucker.count((5, 5, 1, 32, 10), (5, 5, 1, 16, 5))
        + TT.count((4, 4, 32, 64, 10), (4, 16, 32, 8))
        + LAF.count((FLATTEN, 512, 10), (6,))
        + Tucker.count((512, 1, 10), (8, 1, 3))
        + 10 * (32 + 64 + 512 + 1)  # per-task biases
    )
    assert count_parameters(model) == expected == sum(m.parameter_count() for m in model)


def test_towers_are_independent_and_trunk_is_shared() -> None:
    net = UserDefinedSharing([lambda: nn.Linear(3, 4), lambda: nn.Linear(4, 2)], 1, ["a", "b"])
    assert net.towers["a"][0].weight is not net.towers["b"][0].weight
    x = torch.randn(5, 3)
    per_task = net({"a": x, "b": x})
    for task, out in net(x).items():
        torch.testing.assert_close(out, per_task[task])
        torch.testing.assert_close(out, net.towers[task](net.shared(x)))


def test_num_shared_zero_and_all() -> None:
    layers = [lambda: nn.Linear(3, 4), lambda: nn.Linear(4, 2)]
    assert len(UserDefinedSharing(layers, 0, ["a", "b"]).shared) == 0
    full = UserDefinedSharing(layers, 2, ["a", "b"])
    out = full(torch.randn(2, 3))
    torch.testing.assert_close(out["a"], out["b"])


def test_invalid_configurations_raise() -> None:
    head = {"a": lambda: nn.Linear(4, 1), "b": lambda: nn.Linear(4, 3)}
    with pytest.raises(ValueError, match="layer 0 is specified per task"):
        UserDefinedSharing([head], 1, ["a", "b"])
    with pytest.raises(ValueError, match=r"num_shared=3 must be in \[0, 1\]"):
        UserDefinedSharing([head], 3, ["a", "b"])
    with pytest.raises(ValueError, match="expected exactly"):
        UserDefinedSharing([head], 0, ["a", "c"])
    with pytest.raises(ValueError, match="unique"):
        UserDefinedSharing([head], 0, ["a", "a"])
    with pytest.raises(ValueError, match="miss tasks"):
        UserDefinedSharing([head], 0, ["a", "b"])({"a": torch.randn(1, 4)})
    with pytest.raises(TypeError, match=r"not an nn\.Module"):
        UserDefinedSharing([lambda: 3], 0, ["a"])  # type: ignore[list-item]
