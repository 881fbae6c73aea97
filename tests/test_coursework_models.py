"""Coursework architectures (examples/coursework/cw_models.py) and the Task-6 λ extremes."""

import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from mtlkit import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "coursework"))
import cw_models


def test_task41_cnn_shapes_and_parameter_count():
    net = cw_models.task41_cnn()
    x = torch.zeros(2, 1, 28, 28)
    shapes = []
    for layer in net.layers:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    # 'valid' 4x4 convolutions: 28 -> 25 (stride 1) -> 11 (stride 2) -> 4 (stride 2).
    assert shapes == [(32, 25, 25), (64, 11, 11), (128, 4, 4), (2048,), (10,)]
    by_hand = (16 * 1 * 32 + 32) + (16 * 32 * 64 + 64) + (16 * 64 * 128 + 128) + (2048 * 10 + 10)
    assert cw_models.count_parameters(net) == by_hand == 185_066


def test_fashion_networks_match_the_spec():
    single = cw_models.fashion_single_task(10)
    assert single.output_shape == (10,)
    mtl = cw_models.fashion_multitask()
    assert mtl.trunk.output_shape == (3136,)
    # The conv stack before the shared dense layer ends on 128 maps of 7x7.
    assert mtl.trunk.layers[-2](torch.zeros(1, 128, 7, 7)).shape == (1, 6272)
    out = mtl(torch.zeros(3, 1, 28, 28))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"item": (3, 10), "group": (3, 3)}


@pytest.mark.parametrize(("lam", "frozen", "trained"), [(1.0, "group", "item"), (0.0, "item", "group")])
def test_zero_weighted_head_is_bit_identical_after_training(lam, frozen, trained):
    torch.manual_seed(0)
    model = cw_models.fashion_multitask(branch_hidden=(8,))
    x = torch.randn(8, 1, 28, 28)
    data = [(x, {"item": torch.arange(8) % 10, "group": torch.arange(8) % 3})] * 2
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(
        model,
        torch.optim.Adam(model.parameters(), 1e-3),
        {"item": F.cross_entropy, "group": F.cross_entropy},
        weights={"item": lam, "group": 1 - lam},
        progress=False,
    )
    trainer.fit(data, epochs=1)
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith(f"heads.{frozen}."):
            assert torch.equal(value, after[key]), key
    assert not torch.equal(
        before[f"heads.{trained}.body.blocks.0.0.weight"], after[f"heads.{trained}.body.blocks.0.0.weight"]
    )
    assert not torch.equal(before["trunk.layers.0.0.weight"], after["trunk.layers.0.0.weight"])


def test_lambda_one_mtl_is_the_one_head_single_task_network():
    """λ = 1 trains exactly the MTL architecture with one head: same init from the same seed, same updates."""
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    targets = {"item": torch.arange(8) % 10, "group": torch.arange(8) % 3}
    torch.manual_seed(0)
    mtl = cw_models.fashion_multitask(branch_hidden=(8,))
    torch.manual_seed(0)
    single = cw_models.fashion_wide_single_task(10, branch_hidden=(8,))
    assert cw_models.count_parameters(single) == cw_models.count_parameters(mtl.trunk) + cw_models.count_parameters(
        mtl.heads["item"]
    )
    optimisers = [torch.optim.Adam(m.parameters(), 1e-3) for m in (mtl, single)]
    for _ in range(2):
        losses = [
            F.cross_entropy(mtl(x)["item"], targets["item"]) + 0.0 * F.cross_entropy(mtl(x)["group"], targets["group"]),
            F.cross_entropy(single(x), targets["item"]),
        ]
        for loss, opt in zip(losses, optimisers, strict=True):
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert torch.equal(mtl(x)["item"], single(x))


def test_wide_single_task_cnn_has_the_mtl_trunk_width():
    wide = cw_models.fashion_wide_single_task(10)
    assert wide.output_shape == (10,)
    # Backbone as in Task 6.1, plus the 6272 -> 3136 shared dense layer.
    extra = cw_models.count_parameters(wide) - cw_models.count_parameters(cw_models.fashion_single_task(10))
    assert extra == 6272 * 3136 + 3136 + 3136 * 10 + 10 - (6272 * 10 + 10)
