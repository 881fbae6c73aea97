"""The reconstruction task: DAEs sharing the trunk's layers, and its use with weight schedules."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtlkit.auxiliary import DenoisingAutoencoders, WithReconstruction, reconstruction_cost
from mtlkit.noise import MaskingNoise, masking_noise
from mtlkit.schedules import StairsSchedule


class TinyTrunk(nn.Module):
    """Stand-in for ``mtlkit.nn.MLP``: ``blocks[k]`` maps x_k to x_{k+1}."""

    def __init__(self, in_features: int = 6, widths: Sequence[int] = (5, 4)) -> None:
        super().__init__()
        sizes = [in_features, *widths]
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.Sigmoid()) for a, b in itertools.pairwise(sizes))
        self.in_features, self.widths = in_features, tuple(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for block in self.blocks:
            x = block(x)
        return x


class TinyNet(nn.Module):
    """Stand-in for ``MultiTaskModel(trunk, {"class": head})``, counting its forward calls."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.trunk = TinyTrunk()
        self.head = nn.Linear(self.trunk.widths[-1], n_classes)
        self.tasks = ("class",)
        self.calls = 0

    def forward(self, x: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        self.calls += 1
        tasks = self.tasks if tasks is None else tasks
        return {"class": self.head(self.trunk(x))} if "class" in tasks else {}


def make_model(seed: int = 0, **dae_options: object) -> tuple[TinyNet, WithReconstruction]:
    torch.manual_seed(seed)
    net = TinyNet()
    options = {"noise": MaskingNoise(0.25), **dae_options}
    return net, WithReconstruction(net, DenoisingAutoencoders.for_trunk(net.trunk, **options))


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def unchanged(module: nn.Module, before: list[torch.Tensor]) -> bool:
    return same(snapshot(module), before)


# --- sharing ---------------------------------------------------------------------------------


def test_dae_encoders_share_storage_with_the_trunk_layers() -> None:
    net, model = make_model()
    for block, encoder in zip(net.trunk.blocks, model.daes.encoders, strict=True):
        assert encoder[0].weight.data_ptr() == block[0].weight.data_ptr()
        assert encoder[0].bias.data_ptr() == block[0].bias.data_ptr()


def test_one_reconstruction_step_moves_the_trunk_and_so_the_supervised_output() -> None:
    net, model = make_model()
    x = torch.rand(8, 6)
    optimiser = torch.optim.SGD(model.parameters(), lr=1.0)
    prediction = net(x)["class"].detach()
    trunk_before = snapshot(net.trunk)
    model(x, tasks=["reconstruction"])["reconstruction"].backward()
    optimiser.step()
    assert not unchanged(net.trunk, trunk_before)
    assert not torch.allclose(net(x)["class"], prediction)


def test_one_supervised_step_moves_the_dae_encoders() -> None:
    _net, model = make_model(noise=None)  # deterministic J_r
    x, y = torch.rand(8, 6), torch.randint(0, 3, (8,))
    optimiser = torch.optim.SGD(model.parameters(), lr=1.0)
    reconstruction = model.daes(x).detach()
    F.cross_entropy(model(x, tasks=["class"])["class"], y).backward()
    optimiser.step()
    assert model.daes.decoders[0].weight.grad is None  # J_s does not reach the decoders
    assert not torch.allclose(model.daes(x), reconstruction)  # but it moved their encoders


def test_shared_parameters_are_counted_once() -> None:
    net, model = make_model()
    parameters = list(model.parameters())
    assert len({id(p) for p in parameters}) == len(parameters)
    assert len(parameters) == len(list(net.parameters())) + len(list(model.daes.decoders.parameters()))


def test_dae_built_on_a_copy_of_the_trunk_is_rejected() -> None:
    net = TinyNet()
    daes = DenoisingAutoencoders.for_trunk(copy.deepcopy(net.trunk), noise=None)
    with pytest.raises(ValueError, match="encoder 0 of the DAEs is not part of the model"):
        WithReconstruction(net, daes)


# --- the cost ----------------------------------------------------------------------------------


def test_decoders_are_untied_linear_maps_back_to_the_layer_below() -> None:
    _, model = make_model()
    shapes = [tuple(d.weight.shape) for d in model.daes.decoders]
    assert shapes == [(6, 5), (5, 4)]
    assert all(
        d.weight.data_ptr() != e[0].weight.data_ptr()
        for d, e in zip(model.daes.decoders, model.daes.encoders, strict=True)
    )


def test_detached_inputs_confine_each_dae_to_its_own_layers() -> None:
    _, model = make_model()
    model.daes.layer_costs(torch.rand(8, 6))[1].backward()
    encoders, decoders = model.daes.encoders, model.daes.decoders
    assert encoders[0][0].weight.grad is None and decoders[0].weight.grad is None
    assert encoders[1][0].weight.grad.abs().sum() > 0 and decoders[1].weight.grad.abs().sum() > 0


def test_undetached_inputs_let_the_gradient_reach_lower_layers() -> None:
    _, model = make_model(detach_inputs=False)
    model.daes.layer_costs(torch.rand(8, 6))[1].backward()
    assert model.daes.encoders[0][0].weight.grad.abs().sum() > 0


def test_j_r_is_the_weighted_sum_of_the_layer_costs() -> None:
    _, model = make_model(noise=None, layer_weights=[0.5, 1.0])
    x = torch.rand(8, 6)
    costs = model.daes.layer_costs(x)
    torch.testing.assert_close(model.daes(x), 0.5 * costs[0] + costs[1])


def test_targets_are_the_clean_representations() -> None:
    # With everything masked the encoder sees zeros, so the decoder output is a constant c and
    # the MSE against the clean target x must equal mean((c - x)^2).
    _, model = make_model(noise=MaskingNoise(1.0))
    x = torch.rand(8, 6)
    encoder, decoder = model.daes.encoders[0], model.daes.decoders[0]
    constant = decoder(encoder(torch.zeros(1, 6)))
    torch.testing.assert_close(model.daes.layer_costs(x)[0], ((constant - x) ** 2).mean())


def test_bce_cost_matches_its_formula() -> None:
    logits = torch.randn(4, 7, dtype=torch.float64)
    target = torch.rand(4, 7, dtype=torch.float64)
    s = torch.sigmoid(logits)
    expected = -(target * s.log() + (1 - target) * (1 - s).log()).mean()
    torch.testing.assert_close(reconstruction_cost(logits, target, "bce"), expected)


def _fixed_mask(x: torch.Tensor) -> torch.Tensor:
    """The same corruption on every call, as gradcheck's repeated evaluations need."""
    return masking_noise(x, 0.3, generator=torch.Generator().manual_seed(0))


def _float64_daes(detach_inputs: bool) -> DenoisingAutoencoders:
    torch.manual_seed(0)
    trunk = TinyTrunk(4, (3, 2)).double()
    daes = DenoisingAutoencoders.for_trunk(trunk, noise=_fixed_mask, cost=["bce", "mse"], detach_inputs=detach_inputs)
    return daes.double()


def test_gradcheck_float64_through_the_whole_trunk() -> None:
    daes = _float64_daes(detach_inputs=False)
    names = [name for name, _ in daes.named_parameters()]

    def j_r(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(daes, dict(zip(names, values, strict=True)), (x,))

    x = (0.1 + 0.8 * torch.rand(5, 4, dtype=torch.float64)).requires_grad_()  # bce: x in [0, 1]
    parameters = tuple(p.detach().clone().requires_grad_() for p in daes.parameters())
    assert torch.autograd.gradcheck(j_r, (x, *parameters))


class _LayerCost(nn.Module):
    """DAE ``layer``'s cost as a module's forward, so ``functional_call`` can swap parameters."""

    def __init__(self, daes: DenoisingAutoencoders, layer: int) -> None:
        super().__init__()
        self.daes, self.layer = daes, layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.daes.layer_costs(x)[self.layer]


@pytest.mark.parametrize("layer", [0, 1])
def test_gradcheck_float64_of_each_dae_with_detached_inputs(layer: int) -> None:
    # With detached inputs DAE k is differentiated as a function of its own encoder and decoder
    # only (x_{k-1} is data), so that is what the numerical Jacobian may vary.
    module = _LayerCost(_float64_daes(detach_inputs=True), layer)
    own = (f"daes.encoders.{layer}.", f"daes.decoders.{layer}.")
    parameters = {n: p for n, p in module.named_parameters() if n.startswith(own)}
    x = 0.1 + 0.8 * torch.rand(5, 4, dtype=torch.float64)

    def layer_cost(*values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, dict(zip(parameters, values, strict=True)), (x,))

    inputs = tuple(p.detach().clone().requires_grad_() for p in parameters.values())
    assert torch.autograd.gradcheck(layer_cost, inputs)


# --- errors ------------------------------------------------------------------------------------


def _blocks(*sizes: int) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DenoisingAutoencoders([], [3], noise=None), "at least one encoder"),
        (lambda: DenoisingAutoencoders(_blocks(4, 3), [3], noise=None), "needs 2 entries"),
        (
            lambda: DenoisingAutoencoders(_blocks(4, 3, 2), [4, 5, 2], noise=None),
            r"encoder 0 maps 4 -> 3 features, but widths\[0\] -> widths\[1\] is 4 -> 5",
        ),
        (lambda: DenoisingAutoencoders(_blocks(4, 3), [4, 0], noise=None), "positive integers"),
        (
            lambda: DenoisingAutoencoders(_blocks(4, 3), [4, 3], noise=None, cost="l1"),
            "unknown cost 'l1'",
        ),
        (
            lambda: DenoisingAutoencoders(_blocks(4, 3), [4, 3], noise=None, cost=["mse", "mse"]),
            "2 costs",
        ),
        (
            lambda: DenoisingAutoencoders(_blocks(4, 3), [4, 3], noise=None, cost="bce", decoder_activation=nn.Sigmoid),
            "must be None with the 'bce'",
        ),
        (
            lambda: DenoisingAutoencoders(_blocks(4, 3), [4, 3], noise=None, layer_weights=[1.5]),
            r"DAE 0: layer weight must be in \[0, 1\]",
        ),
        (
            lambda: DenoisingAutoencoders(_blocks(4, 3), [4, 3], noise=None, layer_weights=[1, 1]),
            "2 layer weights",
        ),
    ],
)
def test_construction_errors(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_forward_errors_name_the_layer_and_shapes() -> None:
    daes = DenoisingAutoencoders(_blocks(4, 3), [4, 3], noise=None)
    with pytest.raises(ValueError, match=r"flattens to 6 features, but widths\[0\] = 4"):
        daes(torch.rand(2, 2, 3))
    opaque = DenoisingAutoencoders([nn.Identity(), nn.Identity()], [4, 4, 3], noise=None)
    with pytest.raises(ValueError, match=r"encoder 1 maps \(2, 4\) to \(2, 4\), but widths\[2\] = 3"):
        opaque(torch.rand(2, 4))
    bce = DenoisingAutoencoders(_blocks(4, 3), [4, 3], noise=None, cost="bce")
    with pytest.raises(ValueError, match=r"DAE 0: the 'bce' cost needs a target x_0 in \[0, 1\]"):
        bce(torch.full((2, 4), 2.0))


def test_for_trunk_needs_blocks_and_widths() -> None:
    with pytest.raises(AttributeError, match="has no"):
        DenoisingAutoencoders.for_trunk(nn.Linear(2, 2), noise=None)


# --- the wrapper -------------------------------------------------------------------------------


def test_wrapper_computes_only_the_requested_tasks() -> None:
    net, model = make_model()
    dae_calls = []
    model.daes.register_forward_hook(lambda *_: dae_calls.append(1))
    x = torch.rand(8, 6)
    assert model.tasks == ("class", "reconstruction")
    assert list(model(x)) == ["class", "reconstruction"]
    assert (net.calls, len(dae_calls)) == (1, 1)
    assert list(model(x, tasks=["reconstruction"])) == ["reconstruction"]
    assert (net.calls, len(dae_calls)) == (1, 2)  # the heads did not run
    assert list(model(x, tasks=["class"])) == ["class"]
    assert (net.calls, len(dae_calls)) == (2, 2)  # the DAEs did not run
    assert model(x)["reconstruction"].shape == ()


def test_wrapper_rejects_a_name_clash() -> None:
    net = TinyNet()
    model = WithReconstruction(net, DenoisingAutoencoders.for_trunk(net.trunk, noise=None), task="class")
    with pytest.raises(ValueError, match="already has an output named 'class'"):
        model(torch.rand(2, 6))


# --- with a schedule ----------------------------------------------------------------------------


def test_stairs_is_pretraining_then_fine_tuning_with_the_weighted_sum() -> None:
    net, model = make_model()
    x, y = torch.rand(16, 6), torch.randint(0, 3, (16,))
    optimiser, schedule = torch.optim.SGD(model.parameters(), lr=0.5), StairsSchedule(t1=3)
    heads, trunks, decoders = [], [], []  # parameters at the start of each epoch
    for _ in range(6):
        heads.append(snapshot(net.head))
        trunks.append(snapshot(net.trunk))
        decoders.append(snapshot(model.daes.decoders))
        w, out = schedule.weights(), model(x)
        loss = w["class"] * F.cross_entropy(out["class"], y)
        loss = loss + w["reconstruction"] * out["reconstruction"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    # Epochs 0..2 pre-train: the trunk and decoders learn, the supervised head does not move.
    assert same(heads[3], heads[0])
    assert not same(trunks[3], trunks[0]) and not same(decoders[3], decoders[0])
    # Epochs 3..5 fine-tune: the head learns, the decoders no longer move.
    assert not same(heads[5], heads[3])
    assert same(decoders[5], decoders[3])


def test_stairs_with_algorithm_1_alternating_steps_on_semi_supervised_batches() -> None:
    # Alg. 1: per minibatch B, a step on lambda_r * J_r with all of B, then a step on
    # lambda_s * J_s with its labeled part B_s (unlabeled targets are -100).
    net, model = make_model()
    x, y = torch.rand(16, 6), torch.randint(0, 3, (16,))
    y[::2] = -100
    optimiser, schedule = torch.optim.SGD(model.parameters(), lr=0.5), StairsSchedule(t1=2)
    heads = []
    for _ in range(4):
        heads.append(snapshot(net.head))
        w = schedule.weights()
        for batch in torch.arange(16).split(8):
            j_r = model(x[batch], tasks=["reconstruction"])["reconstruction"]
            optimiser.zero_grad()
            (w["reconstruction"] * j_r).backward()
            optimiser.step()
            labeled = batch[y[batch] != -100]
            j_s = F.cross_entropy(model(x[labeled], tasks=["class"])["class"], y[labeled])
            optimiser.zero_grad()
            (w["class"] * j_s).backward()
            optimiser.step()
        schedule.step()
    assert same(heads[2], heads[0])  # pre-training: lambda_s = 0 leaves the head alone
    assert not same(heads[3], heads[2])


def test_sum_over_units_scales_each_layer_cost_by_its_input_width() -> None:
    torch.manual_seed(0)
    blocks = nn.ModuleList([nn.Sequential(nn.Linear(6, 4), nn.Sigmoid()), nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())])
    mean = DenoisingAutoencoders(blocks, [6, 4, 3], noise=None, cost="bce")
    summed = DenoisingAutoencoders(blocks, [6, 4, 3], noise=None, cost="bce", sum_over_units=True)
    summed.decoders.load_state_dict(mean.decoders.state_dict())
    x = torch.rand(5, 6)
    per_entry = mean.layer_costs(x)
    torch.testing.assert_close(summed.layer_costs(x), [6 * per_entry[0], 4 * per_entry[1]])
