"""Sharing strength ρ (paper Eq. 9) at its two reference points and in between."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mtlkit.factorized import LAF, TT, Tucker
from mtlkit.nn import FactorizedConv2d, FactorizedLinear
from mtlkit.sharing import (
    sharing_report,
    sharing_strength,
    sharing_strength_of_factor,
    softmax_identity_strength,
)


@pytest.mark.parametrize("tasks", [2, 3, 10])
def test_single_task_learning_identity_has_zero_sharing(tasks: int) -> None:
    # The paper's STL reference S = I_T; "abs" leaves it unchanged, so Eq. 9 gives exactly 0.
    assert sharing_strength_of_factor(torch.eye(tasks), "abs").item() == 0.0


@pytest.mark.parametrize("normalization", ["softmax", "abs"])
@pytest.mark.parametrize(("rows", "tasks"), [(1, 2), (3, 4), (5, 10)])
def test_hard_sharing_single_ones_row_has_full_sharing(normalization: str, rows: int, tasks: int) -> None:
    factor = torch.zeros(rows, tasks)
    factor[0] = 1.0  # the paper's UD-MTL reference S = [1_{1×T}; 0]
    assert sharing_strength_of_factor(factor, normalization).item() == pytest.approx(1.0, abs=1e-6)  # type: ignore[arg-type]


@pytest.mark.parametrize("tasks", [2, 5, 10])
def test_softmax_identity_is_closed_form_and_vanishes_in_the_limit(tasks: int) -> None:
    identity = torch.eye(tasks, dtype=torch.float64)
    assert sharing_strength_of_factor(identity).item() == pytest.approx(softmax_identity_strength(tasks))
    values = [sharing_strength_of_factor(scale * identity).item() for scale in (1.0, 5.0, 20.0, 60.0)]
    assert values == sorted(values, reverse=True)
    assert values[-1] < 1e-12


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 5),
    tasks=st.integers(2, 6),
    seed=st.integers(0, 999),
    normalization=st.sampled_from(["softmax", "abs"]),
)
def test_strength_is_in_unit_interval_and_sign_and_order_invariant(
    rows: int, tasks: int, seed: int, normalization: str
) -> None:
    factor = torch.randn(rows, tasks, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    rho = sharing_strength_of_factor(factor, normalization).item()  # type: ignore[arg-type]
    assert -1e-12 <= rho <= 1 + 1e-12
    permuted = -factor[:, torch.randperm(tasks, generator=torch.Generator().manual_seed(seed))]
    assert sharing_strength_of_factor(permuted, normalization).item() == pytest.approx(rho)  # type: ignore[arg-type]


def test_report_covers_every_factorised_layer_and_reads_the_s_like_factor() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        FactorizedConv2d(1, 2, 3, 4, Tucker, rule=2),
        nn.Flatten(),
        FactorizedLinear(8, 3, 4, TT, 2),
        FactorizedLinear(8, 3, 1, LAF, 1),  # a single task has no pairs: skipped
    )
    report = sharing_report(model)
    assert set(report) == {"0", "2"}
    assert report["0"] == pytest.approx(sharing_strength_of_factor(model[0].weight.U4.T).item())
    assert report["2"] == pytest.approx(sharing_strength(model[2]))
    with torch.no_grad():
        model[2].weight.G2.zero_()
        model[2].weight.G2[0, :, 0] = 1.0  # last TT core = [1; 0]: fully shared
    assert sharing_strength(model[2]) == pytest.approx(1.0)


def test_errors() -> None:
    with pytest.raises(ValueError, match="≥ 2 tasks"):
        sharing_strength_of_factor(torch.ones(3, 1))
    with pytest.raises(ValueError, match="K × T task factor"):
        sharing_strength_of_factor(torch.ones(3))
    with pytest.raises(ValueError, match="unknown normalization"):
        sharing_strength_of_factor(torch.ones(2, 2), "l2")  # type: ignore[arg-type]
