import pytest
import torch
from torch import nn

from mtlkit import LabelReuseHead, LinearHead, MLPHead, MultiTaskModel, SingleTaskModels
from mtlkit.nn import MLP, Conv, ConvNet, Dense, Flatten, GlobalAvgPool, MaxPool


def test_dict_outputs_with_heterogeneous_heads():
    trunk = ConvNet((1, 12, 12), [Conv(4, 3), MaxPool(2), Flatten()])
    heads = {"item": LinearHead(trunk.out_features, 10), "group": MLPHead(trunk.out_features, [7], 3)}
    out = MultiTaskModel(trunk, heads)(torch.randn(5, 1, 12, 12))
    assert set(out) == {"item", "group"}
    assert out["item"].shape == (5, 10) and out["group"].shape == (5, 3)


def test_task_subset_runs_only_requested_heads():
    calls = []
    head = LinearHead(8, 2)
    head.register_forward_hook(lambda *a: calls.append("b"))
    model = MultiTaskModel(MLP(4, [8]), {"a": LinearHead(8, 3), "b": head})
    out = model(torch.randn(2, 4), tasks=["a"])
    assert list(out) == ["a"] and calls == []


def test_per_task_inputs_go_through_shared_trunk_as_one_batch():
    trunk = MLP(4, [8])
    calls = []
    trunk.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    model = MultiTaskModel(trunk, {"a": LinearHead(8, 3), "b": LinearHead(8, 2)})
    xa, xb = torch.randn(3, 4), torch.randn(5, 4)
    out = model({"a": xa, "b": xb})
    assert calls == [8]
    assert out["a"].shape == (3, 3) and out["b"].shape == (5, 2)
    torch.testing.assert_close(out["a"], model(xa, tasks=["a"])["a"])
    torch.testing.assert_close(out["b"], model(xb, tasks=["b"])["b"])


def test_single_task_models_have_the_same_interface():
    nets = {"a": MLP(4, [8, 3], final_activation=False), "b": MLP(4, [6, 2], final_activation=False)}
    stl = SingleTaskModels(nets)
    mtl = MultiTaskModel(MLP(4, [8]), {"a": LinearHead(8, 3), "b": LinearHead(8, 2)})
    x = torch.randn(7, 4)
    for model in (stl, mtl):
        out = model(x)
        assert {k: v.shape for k, v in out.items()} == {"a": (7, 3), "b": (7, 2)}
        assert list(model(x, tasks=["b"])) == ["b"]
        assert list(model({"a": x, "b": x[:2]})["b"].shape) == [2, 2]
    torch.testing.assert_close(stl(x)["a"], nets["a"](x))
    # No parameter is shared between the single-task networks.
    ids_a = {id(p) for p in nets["a"].parameters()}
    assert ids_a.isdisjoint(id(p) for p in nets["b"].parameters())


def _reuse_model(detach: bool) -> MultiTaskModel:
    torch.manual_seed(0)
    return MultiTaskModel(
        MLP(6, [10]),
        {"coarse": LinearHead(10, 4), "fine": LabelReuseHead(10, "coarse", 4, [5], 12, detach=detach)},
    )


def test_label_reuse_head_receives_the_source_prediction():
    model = _reuse_model(detach=True)
    x = torch.randn(3, 6)
    seen = {}
    model.heads["fine"].register_forward_hook(lambda m, i, o: seen.update(src=i[1]))
    out = model(x, tasks=["fine"])  # the source is computed although not requested
    assert list(out) == ["fine"]
    torch.testing.assert_close(seen["src"], model(x)["coarse"])


@pytest.mark.parametrize("detach", [True, False])
def test_label_reuse_gradient_flow_is_configurable(detach):
    model = _reuse_model(detach)
    model(torch.randn(3, 6))["fine"].sum().backward()
    coarse_grad = model.heads["coarse"].linear.weight.grad
    if detach:
        assert coarse_grad is None
    else:
        assert coarse_grad is not None and coarse_grad.abs().sum() > 0


def test_label_reuse_with_independent_trunks():
    model = MultiTaskModel(
        {"fine": MLP(6, [10]), "coarse": MLP(6, [10])},
        {"fine": LinearHead(10, 12), "coarse": LabelReuseHead(10, "fine", 12, [], 4)},
    )
    assert model(torch.randn(2, 6))["coarse"].shape == (2, 4)


def test_reuse_cycle_and_unknown_source_are_rejected():
    with pytest.raises(ValueError, match="cycle"):
        MultiTaskModel(MLP(2, [4]), {"a": LabelReuseHead(4, "b", 2, [], 2), "b": LabelReuseHead(4, "a", 2, [], 2)})
    with pytest.raises(ValueError, match="unknown task 'zzz'"):
        MultiTaskModel(MLP(2, [4]), {"a": LabelReuseHead(4, "zzz", 2, [], 2)})


def test_bad_model_inputs_name_the_task():
    model = MultiTaskModel(MLP(4, [8]), {"a": LinearHead(8, 3)})
    with pytest.raises(KeyError, match="'nope'"):
        model(torch.randn(2, 4), tasks=["nope"])
    with pytest.raises(KeyError, match="'b'"):
        model({"a": torch.randn(2, 4), "b": torch.randn(2, 4)})
    with pytest.raises(ValueError, match=r"no trunk for \['b'\]"):
        MultiTaskModel({"a": MLP(4, [8])}, {"a": LinearHead(8, 3), "b": LinearHead(8, 3)})


def test_convnet_spec_shapes_and_errors():
    net = ConvNet((3, 32, 32), [Conv(8, 3, stride=2, padding=1), GlobalAvgPool(), Dense(5, activation=None)])
    assert net.output_shape == (5,)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match="Flatten"):
        ConvNet((1, 8, 8), [Conv(2, 3), Dense(4)])
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(3, [4], activation="swishy")


def test_mlp_blocks_expose_each_layer():
    mlp = MLP(5, [4, 3], activation="tanh", dropout=0.1)
    assert len(mlp.blocks) == 2
    assert isinstance(mlp.blocks[0][0], nn.Linear) and isinstance(mlp.blocks[0][1], nn.Tanh)
    assert mlp.out_features == 3
