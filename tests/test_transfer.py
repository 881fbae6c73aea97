import pytest
import torch
from torch import nn

from mtlkit import LinearHead, MLPHead, MultiTaskModel
from mtlkit.label_space import PooledLabelSpace
from mtlkit.lr_schedules import staged_time_decay, staged_time_decay_lr
from mtlkit.nn import all_conv_trunk
from mtlkit.transfer import hand_over_pooled, output_layer, transfer_parameters

SPACE = PooledLabelSpace({"mnist": 10, "notmnist": 10, "fashion_mnist": 10})


def test_pooled_label_space_offsets_and_zero_padded_targets():
    assert SPACE.offsets == {"mnist": 0, "notmnist": 10, "fashion_mnist": 20} and SPACE.total == 30
    assert SPACE.slice("fashion_mnist") == slice(20, 30)
    labels = torch.tensor([0, 3, 9])
    pooled = SPACE.pool("notmnist", labels)
    assert pooled.tolist() == [10, 13, 19]
    one_hot = SPACE.one_hot("notmnist", labels)
    assert one_hot.shape == (3, 30) and one_hot.sum(1).tolist() == [1, 1, 1]
    assert one_hot[:, :10].sum() == 0 and one_hot[:, 20:].sum() == 0
    # CE on the pooled index equals CE on the zero-padded one-hot target.
    logits = torch.randn(3, 30)
    ce = nn.functional.cross_entropy
    torch.testing.assert_close(ce(logits, pooled), ce(logits, one_hot))
    pair = PooledLabelSpace({"fashion_mnist": 10, "notmnist": 10})
    assert pair.total == 20 and pair.offsets["notmnist"] == 10


def test_pooled_label_space_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        SPACE.pool("mnist", torch.tensor([10]))
    with pytest.raises(KeyError, match="not in the pooled label space"):
        SPACE.slice("cifar")
    with pytest.raises(ValueError, match="30 columns"):
        SPACE.restrict("mnist", torch.zeros(2, 20))
    with pytest.raises(ValueError):
        PooledLabelSpace({})


@pytest.mark.parametrize("task", ["mnist", "notmnist", "fashion_mnist"])
def test_hand_over_copies_trunk_and_the_task_rows(task):
    torch.manual_seed(0)
    pooled = MultiTaskModel(all_conv_trunk((1, 28, 28), 8), {"pooled": LinearHead(8, 30)})
    single = MultiTaskModel(all_conv_trunk((1, 28, 28), 8), {task: LinearHead(8, 10)})
    copied = hand_over_pooled(pooled, single, task, SPACE)
    assert sorted(copied) == sorted(single.state_dict())
    rows = SPACE.slice(task)
    torch.testing.assert_close(single.heads[task].linear.weight, pooled.heads["pooled"].linear.weight[rows])
    torch.testing.assert_close(single.heads[task].linear.bias, pooled.heads["pooled"].linear.bias[rows])
    for (name, p), (_, q) in zip(single.trunk.named_parameters(), pooled.trunk.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    x = torch.rand(4, 1, 28, 28)
    pooled.eval(), single.eval()
    torch.testing.assert_close(single(x)[task], SPACE.restrict(task, pooled(x)["pooled"]), rtol=0, atol=1e-6)


def test_hand_over_with_hidden_head_layers_and_per_task_trunk():
    space = PooledLabelSpace({"a": 3, "b": 4})
    pooled = MultiTaskModel(nn.Linear(5, 6), {"pooled": MLPHead(6, [7], 7)})
    single = MultiTaskModel({"b": nn.Linear(5, 6)}, {"b": MLPHead(6, [7], 4)})
    hand_over_pooled(pooled, single, "b", space)
    x = torch.randn(3, 5)
    torch.testing.assert_close(single(x)["b"], pooled(x)["pooled"][:, 3:7])
    assert output_layer(single.heads["b"])[0] == "body.blocks.1.0"


def test_hand_over_rejects_mismatches():
    pooled = MultiTaskModel(nn.Linear(5, 6), {"pooled": LinearHead(6, 20)})
    with pytest.raises(ValueError, match="label space has 30"):
        hand_over_pooled(pooled, MultiTaskModel(nn.Linear(5, 6), {"mnist": LinearHead(6, 10)}), "mnist", SPACE)
    pooled = MultiTaskModel(nn.Linear(5, 6), {"pooled": LinearHead(6, 30)})
    with pytest.raises(ValueError, match="shape"):
        hand_over_pooled(pooled, MultiTaskModel(nn.Linear(5, 8), {"mnist": LinearHead(8, 10)}), "mnist", SPACE)
    with pytest.raises(KeyError, match="no head"):
        hand_over_pooled(pooled, MultiTaskModel(nn.Linear(5, 6), {"mnist": LinearHead(6, 10)}), "x", SPACE)


def test_transfer_parameters_rename_rows_skip_and_missing():
    src, tgt = nn.Sequential(nn.Linear(2, 4)), nn.Sequential(nn.Linear(2, 2))
    idx = torch.tensor([3, 0])
    copied = transfer_parameters(src, tgt, rows={"0.weight": idx, "0.bias": idx})
    assert copied == ["0.weight", "0.bias"] and torch.equal(tgt[0].bias, src[0].bias[idx])
    before = tgt[0].weight.clone()
    assert transfer_parameters(src, tgt, skip=("0.",)) == [] and torch.equal(tgt[0].weight, before)
    with pytest.raises(KeyError, match="no source entry"):
        transfer_parameters(nn.Linear(2, 2), tgt)
    with pytest.raises(KeyError, match="does not have"):
        transfer_parameters(src, tgt, rows={"nope": idx})
    renamed = transfer_parameters(nn.ModuleDict({"a": nn.Linear(2, 2)}), tgt, rename={"0.": "a."})
    assert renamed == ["0.weight", "0.bias"]


def test_staged_time_decay_follows_the_two_stages():
    stages = [(1e-3, 25), (1e-5, 25)]
    assert staged_time_decay_lr(0, stages) == 1e-3
    assert staged_time_decay_lr(24, stages) == pytest.approx(1e-3 / (1 + 1e-3 / 25 * 24))
    assert staged_time_decay_lr(25, stages) == 1e-5
    assert staged_time_decay_lr(60, stages) == staged_time_decay_lr(49, stages)
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = staged_time_decay(opt, stages)
    seen = []
    for _ in range(50):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([staged_time_decay_lr(e, stages) for e in range(50)])
    with pytest.raises(ValueError):
        staged_time_decay(opt, [(1e-3, 0)])
