"""torch.compile on CPU: MultiTaskModel and one Trainer step give what eager mode gives."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from mtlkit import ConvNet, FactorizedConv2d, FactorizedLinear, LinearHead, MultiTaskModel, Trainer
from mtlkit.factorized import LAF, TT, Ranks, Tucker
from mtlkit.nn import Conv, Dense, Flatten, MaxPool

pytestmark = pytest.mark.slow


def _model() -> MultiTaskModel:
    torch.manual_seed(0)
    trunk = ConvNet((1, 12, 12), [Conv(4, 3, padding=1), MaxPool(2), Flatten(), Dense(16)])
    return MultiTaskModel(trunk, {"item": LinearHead(16, 10), "group": LinearHead(16, 3)})


def _batch(seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 1, 12, 12, generator=g)
    return x, {"item": torch.randint(0, 10, (8,), generator=g), "group": torch.randint(0, 3, (8,), generator=g)}


def test_compiled_multitask_model_matches_eager() -> None:
    model = _model().eval()
    compiled = torch.compile(model)
    x, _ = _batch()
    eager_out, compiled_out = model(x), compiled(x)
    assert eager_out.keys() == compiled_out.keys()
    for task in eager_out:
        torch.testing.assert_close(compiled_out[task], eager_out[task], rtol=1e-5, atol=1e-6)
    # A subset of tasks and per-task inputs go through the same compiled module.
    torch.testing.assert_close(compiled(x, tasks=["group"])["group"], eager_out["group"], rtol=1e-5, atol=1e-6)


def test_a_trainer_step_on_a_compiled_model_matches_eager() -> None:
    eager = _model()
    compiled_model = copy.deepcopy(eager)
    losses = {"item": F.cross_entropy, "group": F.cross_entropy}
    weights = {"item": 0.5, "group": 0.5}
    batches = [_batch(0), _batch(1)]
    trainers = []
    for model in (eager, torch.compile(compiled_model)):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = Trainer(model, optimizer, losses, weights=weights, progress=False)
        trainer.fit(batches, epochs=1)
        trainers.append(trainer)
    for (name, p_eager), (_, p_compiled) in zip(
        eager.named_parameters(), compiled_model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(p_compiled, p_eager, rtol=1e-4, atol=1e-6, msg=name)
    assert any(not torch.equal(p, q) for p, q in zip(eager.parameters(), _model().parameters(), strict=True))


@pytest.mark.parametrize(
    ("factorization", "rule"),
    [(LAF, Ranks(2)), (Tucker, Ranks(3, 2, 2)), (TT, Ranks(3, 2))],
    ids=["laf", "tucker", "tt"],
)
def test_compiled_factorized_linear_matches_eager_forward_and_gradients(factorization, rule) -> None:
    torch.manual_seed(0)
    layer = FactorizedLinear(8, 4, num_tasks=3, factorization=factorization, rule=rule)
    twin = copy.deepcopy(layer)
    compiled = torch.compile(twin)
    x = torch.randn(5, 8)
    eager_out, compiled_out = layer(x), compiled(x)
    torch.testing.assert_close(compiled_out, eager_out, rtol=1e-5, atol=1e-6)
    eager_out.square().sum().backward()
    compiled_out.square().sum().backward()
    for (name, p), (_, q) in zip(layer.named_parameters(), twin.named_parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_compiled_factorized_conv_matches_eager() -> None:
    torch.manual_seed(0)
    layer = FactorizedConv2d(2, 4, 3, num_tasks=3, factorization=Tucker, rule=Ranks(2, 2, 2, 3, 2))
    compiled = torch.compile(copy.deepcopy(layer))
    x = torch.randn(2, 2, 6, 6)
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-5, atol=1e-6)
