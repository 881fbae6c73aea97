import json
import math

import pytest
import torch
from helpers import LOSSES, ShuffledBatches, toy_model, toy_problem
from torch.nn import functional as F

from mtlkit import (
    ConstantWeights,
    NonFiniteLossError,
    Phase,
    StairsSchedule,
    Trainer,
    load_checkpoint,
    weighted_sum,
)
from mtlkit.precision import bf16_supported

needs_bf16 = pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16")


def _trainer(model, tmp_path=None, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    dirs = {} if tmp_path is None else {"checkpoint_dir": tmp_path / "ckpt", "log_dir": tmp_path / "logs"}
    return Trainer(model, opt, LOSSES, progress=False, **dirs, **kw)


def test_weighted_sum_is_the_convex_combination():
    l1, l2 = torch.tensor(3.0), torch.tensor(5.0)
    for lam in (0.0, 0.25, 1.0):
        assert float(weighted_sum({"a": l1, "b": l2}, {"a": lam, "b": 1 - lam})) == pytest.approx(
            lam * 3 + (1 - lam) * 5
        )
    with pytest.raises(KeyError, match="'c'"):
        weighted_sum({"c": l1}, {"a": 1.0})


def test_trainer_step_minimises_the_weighted_loss():
    x, y = toy_problem()
    model = toy_model()
    trainer = _trainer(model, weights={"a": 0.25, "b": 0.75})
    # Reproduce the Trainer's step by hand on a copy and compare parameters.
    ref = toy_model()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    batch = (x[:32], {k: v[:32] for k, v in y.items()})
    trainer.train_step(batch)
    out = ref(batch[0])
    loss = 0.25 * F.cross_entropy(out["a"], batch[1]["a"]) + 0.75 * F.cross_entropy(out["b"], batch[1]["b"])
    opt.zero_grad()
    loss.backward()
    opt.step()
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_zero_weight_leaves_that_head_untouched():
    x, y = toy_problem()
    model = toy_model()
    before = model.heads["b"].linear.weight.clone()
    trainer = Trainer(
        model, torch.optim.Adam(model.parameters(), 1e-2), LOSSES, weights={"a": 1.0, "b": 0.0}, progress=False
    )
    trainer.fit(ShuffledBatches(x, y, 16), epochs=2)
    torch.testing.assert_close(model.heads["b"].linear.weight, before)


def test_fit_learns_and_reports_per_task_metrics(tmp_path):
    x, y = toy_problem(256)
    model = toy_model()
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), 1e-2), LOSSES, progress=False, log_dir=tmp_path)
    history = trainer.fit(ShuffledBatches(x, y, 32), epochs=15, val_data=ShuffledBatches(x, y, 64))
    assert {"train/a/loss", "train/b/loss", "val/a/acc", "val/b/acc", "val/a/loss"} <= set(history[-1])
    assert history[-1]["val/b/acc"] > 0.9
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 16))


def test_same_seed_gives_identical_metrics():
    x, y = toy_problem()
    runs = []
    for _ in range(2):
        model = toy_model(seed=3, dropout=0.2)
        trainer = _trainer(model, seed=7)
        runs.append(trainer.fit(ShuffledBatches(x, y, 16, seed=1), epochs=3))
    strip = [[{k: v for k, v in r.items() if k != "time_s"} for r in run] for run in runs]
    assert strip[0] == strip[1]


def test_kill_and_resume_equals_uninterrupted_bitwise(tmp_path):
    x, y = toy_problem()
    full = toy_model(dropout=0.3)
    _trainer(full, tmp_path / "full", seed=5).fit(ShuffledBatches(x, y, 16), epochs=4)

    first = toy_model(dropout=0.3)
    _trainer(first, tmp_path / "cut", seed=5).fit(ShuffledBatches(x, y, 16), epochs=2)
    # A new process: fresh model, optimiser and data source; state comes from the checkpoint only.
    torch.manual_seed(12345)
    resumed = toy_model(seed=99, dropout=0.3)
    trainer = _trainer(resumed, tmp_path / "cut", seed=5)
    history = trainer.fit(ShuffledBatches(x, y, 16, seed=42), epochs=4)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    logged = (tmp_path / "cut" / "logs" / "metrics.jsonl").read_text().splitlines()
    assert len(logged) == 4


def test_checkpoint_contains_everything_needed(tmp_path):
    x, y = toy_problem()
    trainer = _trainer(toy_model(), tmp_path, weights=ConstantWeights({"a": 1.0, "b": 1.0}))
    trainer.fit(ShuffledBatches(x, y, 32), epochs=1)
    state = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert {"epoch", "model", "optimizers", "rng", "data_generator", "schedule", "history"} <= set(state)
    assert state["epoch"] == 1


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=needs_bf16)])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, precision):
    x, y = toy_problem()
    model = toy_model()
    trainer = _trainer(model, tmp_path, precision=precision)
    trainer.fit(ShuffledBatches(x, y, 32), epochs=1)
    ckpt = tmp_path / "ckpt" / "last.pt"
    good = ckpt.read_bytes()
    with torch.no_grad():
        model.heads["b"].linear.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"task 'b' is nan at epoch 2, step 0"):
        trainer.fit(ShuffledBatches(x, y, 32), epochs=2, resume=False)
    assert ckpt.read_bytes() == good
    assert math.isfinite(float(load_checkpoint(ckpt)["model"]["heads.b.linear.weight"].sum()))


def test_unknown_task_in_batch_is_named():
    x, y = toy_problem()
    trainer = _trainer(toy_model())
    with pytest.raises(KeyError, match="'zebra'"):
        trainer.train_step((x[:4], {**{k: v[:4] for k, v in y.items()}, "zebra": torch.zeros(4)}))


def test_label_shape_mismatch_is_named():
    x, y = toy_problem()
    trainer = _trainer(toy_model())
    with pytest.raises(ValueError, match=r"task 'a'.*\(4, 3\).*output shape \(4, 3\)"):
        trainer.train_step((x[:4], {"a": torch.zeros(4, 3, dtype=torch.long), "b": y["b"][:4]}))
    with pytest.raises(ValueError, match=r"task 'b': labels must lie in \[0, 2\), got range \[0, 5\]"):
        trainer.train_step((x[:4], {"a": y["a"][:4], "b": torch.tensor([0, 1, 5, 1])}))


def test_empty_dataset_and_missing_head_are_errors():
    with pytest.raises(ValueError, match="no batches"):
        _trainer(toy_model()).fit([], epochs=1)
    model = toy_model()
    with pytest.raises(ValueError, match=r"no head for task\(s\) \['c'\]"):
        Trainer(model, torch.optim.SGD(model.parameters(), 0.1), {**LOSSES, "c": F.cross_entropy})


def test_unlabeled_targets_are_ignored():
    x, y = toy_problem(8)
    trainer = _trainer(toy_model())
    b = y["b"].clone()
    b[:] = -100
    # All of task b unlabeled: only task a is optimised, no NaN.
    assert set(trainer.train_step((x, {"a": y["a"], "b": b}))) == {"a"}


def test_phases_update_only_their_tasks_parameters():
    x, y = toy_problem(32)
    model = toy_model()
    opt_a = torch.optim.SGD(model.heads["a"].parameters(), lr=0.1)
    opt_b = torch.optim.SGD(model.heads["b"].parameters(), lr=0.1)
    trainer = Trainer(model, opt_a, LOSSES, phases=[Phase(("a",), opt_a), Phase(("b",), opt_b)], progress=False)
    trunk = [p.clone() for p in model.trunk.parameters()]
    calls = []
    model.register_forward_pre_hook(lambda m, args, kw: calls.append(tuple(kw["tasks"])), with_kwargs=True)
    trainer.train_step((x, y))
    assert calls == [("a",), ("b",)]
    for p, q in zip(trunk, model.trunk.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_phase_whose_tasks_all_weigh_zero_is_skipped_and_steps_match_a_loop_oracle():
    x, y = toy_problem(48)
    batches = [(x[i : i + 16], {k: v[i : i + 16] for k, v in y.items()}) for i in range(0, 48, 16)]
    # Alg. 1 with stairs: "b" alone for 2 iterations, then "a" alone; momentum makes a skipped step visible.
    schedule = StairsSchedule(2, supervised="a", reconstruction="b", unit="iteration")
    model, oracle = toy_model(), toy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, opt, LOSSES, weights=schedule, phases=[Phase(("b",)), Phase(("a",))], progress=False)
    calls = []
    model.register_forward_pre_hook(lambda m, args, kw: calls.append(tuple(kw["tasks"])), with_kwargs=True)
    history = trainer.fit(batches * 2, epochs=1)
    assert calls == [("b",), ("b",), *[("a",)] * 4]  # no forward pass for a phase that is switched off
    reference = torch.optim.SGD(oracle.parameters(), lr=0.1, momentum=0.9)
    logged = {"a": [], "b": []}
    for t, (xb, yb) in enumerate(batches * 2):
        task = "b" if t < 2 else "a"
        loss = F.cross_entropy(oracle(xb, tasks=[task])[task], yb[task])
        logged[task].append(float(loss.detach()))
        reference.zero_grad()
        loss.backward()
        reference.step()
    for p, q in zip(model.parameters(), oracle.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    # Each task's epoch mean is over the steps that computed it.
    assert history[0]["train/b/loss"] == pytest.approx(sum(logged["b"]) / 2)
    assert history[0]["train/a/loss"] == pytest.approx(sum(logged["a"]) / 4)


def test_a_skipped_phase_clears_its_gradients_as_a_zero_weighted_step_would():
    x, y = toy_problem(32)
    model = toy_model()
    opt_a = torch.optim.SGD(model.heads["a"].parameters(), lr=0.1)
    opt_b = torch.optim.SGD([*model.trunk.parameters(), *model.heads["b"].parameters()], lr=0.1)
    schedule = StairsSchedule(1, supervised="a", reconstruction="b", unit="iteration")
    trainer = Trainer(model, opt_a, LOSSES, weights=schedule, phases=[Phase(("b",), opt_b), Phase(("a",), opt_a)],
                      grad_clip=0.05, progress=False)  # fmt: skip
    trainer.train_step((x, y))  # "b" steps and leaves its gradients
    trainer.train_step((x, y))  # "b" is skipped: its stale gradients must not enter "a"'s clipping
    assert all(p.grad is None for p in model.heads["b"].parameters())


def test_a_ddp_stand_in_loss_is_not_logged(monkeypatch):
    x, y = toy_problem(16)
    trainer = _trainer(toy_model())
    monkeypatch.setattr(trainer, "world_size", 2)
    outputs = trainer.model(x)
    losses, stand_ins = trainer._task_losses(outputs, {"a": y["a"], "b": torch.full_like(y["b"], -100)}, ("a", "b"))
    assert set(losses) == {"a", "b"} and stand_ins == {"b"} and float(losses["b"]) == 0.0


def test_an_epoch_mean_skips_the_batches_without_a_tasks_labels():
    x, y = toy_problem(32)
    unlabeled = torch.full_like(y["b"][16:], -100)
    batches = [(x[:16], {k: v[:16] for k, v in y.items()}), (x[16:], {"a": y["a"][16:], "b": unlabeled})]
    trainer = _trainer(toy_model())
    steps = [trainer.train_step(b) for b in batches]
    fresh = _trainer(toy_model())
    record = fresh.fit(batches, epochs=1)[0]
    assert set(steps[1]) == {"a"}
    assert record["train/b/loss"] == pytest.approx(steps[0]["b"])  # not halved by the batch that had no "b"


def test_tensorboard_events_are_written(tmp_path):
    x, y = toy_problem()
    _trainer(toy_model(), tmp_path, tensorboard=True).fit(ShuffledBatches(x, y, 32), epochs=1)
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))


def test_progress_bar_is_off_without_a_terminal(capsys):
    x, y = toy_problem()
    model = toy_model()
    Trainer(model, torch.optim.SGD(model.parameters(), 0.1), LOSSES).fit(ShuffledBatches(x, y, 32), epochs=1)
    assert "epoch 1/1" not in capsys.readouterr().err


def test_zero_weighted_task_is_left_out_of_the_step_even_with_weight_decay():
    x, y = toy_problem()
    model = toy_model()
    before = model.heads["b"].linear.weight.clone()
    opt = torch.optim.AdamW(model.parameters(), 1e-2, weight_decay=0.5)
    trainer = Trainer(model, opt, LOSSES, weights={"a": 1.0, "b": 0.0}, progress=False)
    logged = trainer.train_step((x, y))
    assert set(logged) == {"a", "b"}  # still measured and logged
    assert model.heads["b"].linear.weight.grad is None
    torch.testing.assert_close(model.heads["b"].linear.weight, before)


def test_resume_is_bitwise_with_in_memory_batches(tmp_path):
    from mtlkit.data import InMemoryBatches

    x, y = toy_problem()

    def train(epochs, folder, seed_noise=0):
        torch.manual_seed(seed_noise)
        model = toy_model(seed=seed_noise, dropout=0.3)
        data = InMemoryBatches(x, y, batch_size=16, seed=seed_noise)
        _trainer(model, folder, seed=5).fit(data, epochs=epochs)
        return model

    full = train(3, tmp_path / "full")
    train(1, tmp_path / "cut")
    resumed = train(3, tmp_path / "cut", seed_noise=77)  # model, data order and RNG all come from the checkpoint
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("schedule_first", [False, True])
def test_a_checkpoint_resumes_only_with_the_same_use_of_an_lr_scheduler(tmp_path, schedule_first):
    """A run resumed from a checkpoint of another schedule would silently restart or drop it."""
    x, y = toy_problem()

    def trainer(scheduled: bool) -> Trainer:
        model = toy_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3) if scheduled else None
        return Trainer(model, opt, LOSSES, progress=False, checkpoint_dir=tmp_path, lr_scheduler=schedule)

    trainer(schedule_first).fit(ShuffledBatches(x, y, 32), epochs=1)
    with pytest.raises(ValueError, match="lr_scheduler"):
        trainer(not schedule_first).fit(ShuffledBatches(x, y, 32), epochs=2)
    resumed = trainer(schedule_first)
    assert len(resumed.fit(ShuffledBatches(x, y, 32), epochs=2)) == 2
