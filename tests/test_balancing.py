"""Task weightings: hand-computed steps, robustness properties, composition, Trainer slot, resume."""

import math
import warnings

import pytest
import torch
from helpers import LOSSES, ShuffledBatches, toy_model, toy_problem
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from mtlkit import ExponentialSchedule, LinearHead, MultiTaskModel, StairsSchedule, Trainer, weighted_sum
from mtlkit.balancing import (
    DBMTL,
    FAMO,
    DynamicWeightAverage,
    EqualWeighting,
    FixedWeights,
    GradNorm,
    RandomLossWeighting,
    Scheduled,
    TaskWeighting,
    UncertaintyWeighting,
)
from mtlkit.nn import MLP, SingleTaskModels
from mtlkit.precision import bf16_supported

AB = ("a", "b")


def _losses(**values):
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items()}


# ---------------------------------------------------------------- fixed weights and schedules
@given(st.lists(st.floats(0, 1e4), min_size=2, max_size=2), st.floats(0, 1))
def test_fixed_weights_are_weighted_sum_bitwise(values, lam):
    losses = {"a": torch.tensor(values[0]), "b": torch.tensor(values[1])}
    weights = {"a": lam, "b": 1 - lam}
    active = {t: loss for t, loss in losses.items() if weights[t] != 0}
    got = FixedWeights(weights)(losses)
    if not active:
        assert got is None
    else:
        assert torch.equal(got, weighted_sum(active, weights))


def test_zero_scheduled_task_gets_no_gradient_and_the_schedule_steps_by_its_unit():
    weighting = Scheduled(StairsSchedule(t1=1, supervised="a", reconstruction="b", unit="iteration"))
    losses = _losses(a=2.0, b=3.0)
    weighting.backward(losses)
    assert losses["a"].grad is None and float(losses["b"].grad) == 1.0
    weighting.on_epoch_end()  # an iteration schedule ignores epochs
    assert weighting.schedule.t == 0
    weighting.on_iteration_end()
    assert weighting.schedule.weights() == {"a": 1.0, "b": 0.0}
    assert weighting.state_dict()["_extra_state"] == {"schedule": {"t": 1}}


# ---------------------------------------------------------------- hand-computed steps
def test_uncertainty_weighting_hand_step():
    uw = UncertaintyWeighting(AB)
    with torch.no_grad():
        uw.log_variance.copy_(torch.tensor([0.0, math.log(2.0)]))
    losses = _losses(a=2.0, b=4.0)
    total = uw(losses)
    # 0.5 e^0 2 + 0 + 0.5 e^{-log 2} 4 + 0.5 log 2
    assert float(total.detach()) == pytest.approx(1.0 + 1.0 + 0.5 * math.log(2.0))
    total.backward()
    # d/ds (0.5 e^{-s} L + 0.5 s) = -0.5 e^{-s} L + 0.5
    assert uw.log_variance.grad.tolist() == pytest.approx([-1.0 + 0.5, -1.0 + 0.5])
    assert float(losses["b"].grad) == pytest.approx(0.25)
    assert uw.last_weights == pytest.approx({"a": 0.5, "b": 0.25})


def test_dwa_hand_step():
    dwa = DynamicWeightAverage(AB, temperature=2.0)
    for a, b in ((3.0, 5.0), (5.0, 3.0)):  # epoch 1: two steps averaging (4, 4)
        assert dwa(_losses(a=a, b=b)) is not None
        assert dwa.last_weights == {"a": 1.0, "b": 1.0}
    dwa.on_epoch_end()
    dwa(_losses(a=1.0, b=4.0))  # epoch 2 averages (1, 4): still weight 1 (no two epochs yet)
    assert dwa.last_weights == {"a": 1.0, "b": 1.0}
    dwa.on_epoch_end()
    losses = _losses(a=1.0, b=1.0)
    dwa(losses).backward()
    ra, rb = 1.0 / 4.0, 4.0 / 4.0
    wa = 2 * math.exp(ra / 2) / (math.exp(ra / 2) + math.exp(rb / 2))
    assert dwa.last_weights["a"] == pytest.approx(wa) and dwa.last_weights["b"] == pytest.approx(2 - wa)
    assert float(losses["a"].grad) == pytest.approx(wa)


def test_rlw_hand_step_and_own_generator():
    rlw = RandomLossWeighting(("a", "b", "c"), seed=3)
    state = torch.random.get_rng_state()
    losses = _losses(a=1.0, b=2.0, c=3.0)
    total = rlw(losses)
    assert torch.equal(torch.random.get_rng_state(), state)  # global streams untouched
    z = torch.randn(3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = torch.softmax(z, 0)
    assert float(total.detach()) == pytest.approx(float(expected @ torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)))
    second = rlw.last_weights
    restored = RandomLossWeighting(("a", "b", "c"), seed=0)
    restored.load_state_dict(rlw.state_dict())
    rlw(losses), restored(losses)
    assert rlw.last_weights == restored.last_weights != second


def _two_head_model(seed=0):
    torch.manual_seed(seed)
    return MultiTaskModel(torch.nn.Linear(3, 4), {"a": LinearHead(4, 1), "b": LinearHead(4, 1)}).double()


def _mse_losses(model, x, scales=(1.0, 1.0)):
    out = model(x)
    return {t: s * (out[t] ** 2).mean() for t, s in zip(AB, scales, strict=True)}


def test_gradnorm_hand_step():
    model = _two_head_model()
    x = torch.randn(5, 3, dtype=torch.float64)
    gradnorm = GradNorm(AB, alpha=1.5).double()
    gradnorm.attach(model)
    with torch.no_grad():
        gradnorm.weight.copy_(torch.tensor([0.5, 1.5]))
        gradnorm.initial_loss.copy_(torch.tensor([2.0, 1.0]))
    losses = _mse_losses(model, x)
    layer = list(model.trunk.parameters())
    g = [
        torch.cat([q.reshape(-1) for q in torch.autograd.grad(losses[t], layer, retain_graph=True)]).norm() for t in AB
    ]
    w = torch.tensor([0.5, 1.5], dtype=torch.float64)
    big_g = w * torch.stack(g)
    ratio = torch.stack([losses["a"].detach() / 2.0, losses["b"].detach() / 1.0])
    target = big_g.mean() * (ratio / ratio.mean()) ** 1.5
    gradnorm(losses).backward()
    assert gradnorm.weight.grad.tolist() == pytest.approx((torch.sign(big_g - target) * torch.stack(g)).tolist())
    # the model's gradient is that of sum w_t L_t, with w held constant
    reference = _two_head_model()
    ref_losses = _mse_losses(reference, x)
    (0.5 * ref_losses["a"] + 1.5 * ref_losses["b"]).backward()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad)
    with torch.no_grad():
        gradnorm.weight.copy_(torch.tensor([-1.0, 3.0]))
    gradnorm.on_iteration_end()
    assert gradnorm.weight.tolist() == [0.0, 2.0]  # clipped at 0, renormalised to sum T


def test_famo_hand_step():
    famo = FAMO(AB, lr=0.5, weight_decay=0.1, eps=1e-8)
    losses = _losses(a=1.0, b=4.0)
    famo(losses).backward()
    # z = (1/2, 1/2); c = 1 / (0.5/1 + 0.5/4) = 1.6; weight c z / l = (0.8, 0.2)
    assert famo.last_weights == pytest.approx({"a": 0.8, "b": 0.2})
    assert float(losses["a"].grad) == pytest.approx(0.8) and float(losses["b"].grad) == pytest.approx(0.2)
    famo(_losses(a=0.5, b=4.0))  # a's log-loss fell by log 2, b's did not
    delta = torch.tensor([math.log(2.0), 0.0], dtype=torch.float64)
    z = torch.tensor([0.5, 0.5], dtype=torch.float64)
    jacobian = torch.diag(z) - torch.outer(z, z)
    expected = torch.zeros(2, dtype=torch.float64) - 0.5 * (jacobian.T @ delta + 0.1 * 0)
    assert famo.logits.tolist() == pytest.approx(expected.tolist())
    assert famo.logits[1] > famo.logits[0]  # the task that improved least gains weight


def test_dbmtl_hand_step():
    model = _two_head_model()
    x = torch.randn(5, 3, dtype=torch.float64)
    dbmtl = DBMTL(AB, beta=0.5, eps=1e-8).double()
    dbmtl.attach(model)
    losses = _mse_losses(model, x, scales=(1.0, 100.0))
    reference = _two_head_model()
    ref = _mse_losses(reference, x, scales=(1.0, 100.0))
    shared = list(reference.trunk.parameters())
    logs = {t: torch.log(ref[t] + 1e-8) for t in AB}
    g = {t: torch.cat([q.reshape(-1) for q in torch.autograd.grad(logs[t], shared, retain_graph=True)]) for t in AB}
    avg = {t: 0.5 * g[t] for t in AB}  # running average from 0 with beta = 0.5
    top = max(avg[t].norm() for t in AB)
    expected_shared = sum(top / avg[t].norm() * avg[t] for t in AB)
    assert dbmtl.backward(losses)
    got_shared = torch.cat([p.grad.reshape(-1) for p in model.trunk.parameters()])
    assert torch.allclose(got_shared, expected_shared)
    (logs["a"] + logs["b"]).backward()
    for name, p in model.heads.named_parameters():
        assert torch.allclose(p.grad, dict(reference.heads.named_parameters())[name].grad)


# ---------------------------------------------------------------- composition
def test_schedule_on_top_of_uncertainty_weighting():
    schedule = ExponentialSchedule(sigma=2.0, supervised="a", reconstruction="b")
    weighting = Scheduled(schedule, UncertaintyWeighting(AB))
    schedule.t = 1
    s = schedule.weights()
    losses = _losses(a=2.0, b=3.0)
    total = weighting(losses)
    assert float(total.detach()) == pytest.approx(s["a"] * 0.5 * 2.0 + s["b"] * 0.5 * 3.0)
    total.backward()
    assert weighting.inner.log_variance.grad.tolist() == pytest.approx([s["a"] * (-1.0 + 0.5), s["b"] * (-1.5 + 0.5)])
    # a zero schedule weight hides the task from the adaptive method: no gradient to its s_t
    schedule.t = 0
    weighting.inner.log_variance.grad = None
    weighting(_losses(a=2.0, b=3.0)).backward()
    assert weighting.inner.log_variance.grad[0] == 0 and weighting.last_weights == {"b": 1.0}


def test_schedule_on_top_of_dbmtl_scales_its_balanced_gradient():
    x = torch.randn(5, 3, dtype=torch.float64)
    plain, scaled = _two_head_model(), _two_head_model()
    dbmtl = DBMTL(AB).double()
    dbmtl.attach(plain)
    dbmtl.backward(_mse_losses(plain, x), {"a": 0.25, "b": 0.25})
    composed = Scheduled(FixedWeights({"a": 1.0, "b": 1.0}).schedule, DBMTL(AB).double())
    composed.attach(scaled)
    composed.backward(_mse_losses(scaled, x))
    for p, q in zip(plain.parameters(), scaled.parameters(), strict=True):
        assert torch.allclose(4 * p.grad, q.grad)


# ---------------------------------------------------------------- robustness
def _model_for(n_tasks, seed=0):
    torch.manual_seed(seed)
    tasks = [f"t{i}" for i in range(n_tasks)]
    return MultiTaskModel(MLP(3, [4]), {t: LinearHead(4, 1) for t in tasks}), tuple(tasks)


def _make(method, tasks):
    return {
        "uw": lambda: UncertaintyWeighting(tasks),
        "dwa": lambda: DynamicWeightAverage(tasks),
        "rlw": lambda: RandomLossWeighting(tasks),
        "gradnorm": lambda: GradNorm(tasks),
        "famo": lambda: FAMO(tasks),
        "dbmtl": lambda: DBMTL(tasks),
        "equal": lambda: EqualWeighting(tasks),
    }[method]()


METHODS = ("uw", "dwa", "rlw", "gradnorm", "famo", "dbmtl")
SUMS = {"dwa": "T", "rlw": 1.0, "famo": 1.0, "equal": "T"}


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(METHODS),
    st.integers(1, 20),
    st.data(),
)
def test_weights_and_gradients_stay_finite_over_extreme_losses(method, n_tasks, data):
    scales = data.draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-4, 1e4)), min_size=n_tasks, max_size=n_tasks))
    model, tasks = _model_for(n_tasks)
    weighting = _make(method, tasks)
    weighting.attach(model)
    x = torch.randn(4, 3)
    for _ in range(3):  # a few steps, so running statistics (DWA epochs, FAMO logits, averages) are used
        model.zero_grad(set_to_none=True)
        out = model(x)
        # the scaled task's loss is exactly 0 when its scale is 0
        unit = {t: (out[t] ** 2).mean() / (out[t] ** 2).mean().detach().clamp_min(1e-12) for t in tasks}
        losses = {t: s * unit[t] for t, s in zip(tasks, scales, strict=True)}
        assert weighting.backward(losses)
        if method == "gradnorm":  # an optimiser step on the learned weights, which on_iteration_end renormalises
            with torch.no_grad():
                weighting.weight.sub_(weighting.weight.grad)
        weighting.on_iteration_end()
        weighting.on_epoch_end()
        grads = [p.grad for p in [*model.parameters(), *weighting.parameters()] if p.grad is not None]
        assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
        weights = weighting.last_weights
        assert set(weights) == set(tasks)
        assert all(math.isfinite(w) and w >= 0 for w in weights.values())
        if method in SUMS:
            expected = n_tasks if SUMS[method] == "T" else SUMS[method]
            assert sum(weights.values()) == pytest.approx(expected)
        if method == "gradnorm":  # the learned weights, renormalised after the step (Chen et al., Sec. 3.2)
            learned = weighting.weight.detach()
            assert bool((learned >= 0).all()) and float(learned.sum()) == pytest.approx(n_tasks)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(("famo", "dbmtl")), st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=5), st.data())
def test_famo_and_dbmtl_are_invariant_to_loss_rescaling(method, factors, data):
    n = len(factors)
    directions = []
    for scale in ([1.0] * n, factors):
        model, tasks = _model_for(n, seed=1)
        model = model.double()
        # Both methods are invariant up to their eps (log(l + eps)); an eps far below the smallest
        # loss (about 1e-4 here) makes the invariance exact to float64 rounding.
        weighting = (FAMO(tasks, eps=1e-15) if method == "famo" else DBMTL(tasks, eps=1e-15)).double()
        weighting.attach(model)
        x = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)
        for _ in range(2):
            model.zero_grad(set_to_none=True)
            out = model(x)
            losses = {t: k * ((out[t] - 1) ** 2).mean() for t, k in zip(tasks, scale, strict=True)}
            weighting.backward(losses)
            weighting.on_iteration_end()
        grad = torch.cat([p.grad.reshape(-1) for p in model.trunk.parameters()])
        directions.append(grad / grad.norm())
    assert torch.allclose(directions[0], directions[1], atol=1e-5)


def test_bf16_losses_are_combined_in_float32():
    losses = {"a": torch.tensor(3.0, dtype=torch.bfloat16, requires_grad=True), "b": torch.tensor(1e-4).bfloat16()}
    for weighting in (UncertaintyWeighting(AB), FAMO(AB), RandomLossWeighting(AB), DynamicWeightAverage(AB)):
        total = weighting(losses)
        assert total.dtype == torch.float32 and torch.isfinite(total)


# ---------------------------------------------------------------- errors
def test_impossible_configurations_are_named():
    stl = SingleTaskModels({t: MLP(3, [2]) for t in AB})
    for method in (GradNorm, DBMTL):
        with pytest.raises(ValueError, match="shared parameters"):
            method(AB).attach(stl)
        with pytest.raises(TypeError, match="MultiTaskModule"):
            method(AB).attach(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"tasks=\(\)"):
        UncertaintyWeighting(())
    with pytest.raises(TypeError, match="one string"):
        UncertaintyWeighting("ab")
    with pytest.raises(ValueError, match="unique"):
        FAMO(("a", "a"))
    with pytest.raises(ValueError, match="alpha"):
        GradNorm(AB, alpha=-1)
    with pytest.raises(ValueError, match="beta"):
        DBMTL(AB, beta=1.0)
    with pytest.raises(ValueError, match="temperature"):
        DynamicWeightAverage(AB, temperature=0)
    with pytest.raises(ValueError, match="balances"):
        Scheduled(StairsSchedule(1), UncertaintyWeighting(AB))
    with pytest.raises(ValueError, match="'c'"):
        UncertaintyWeighting(AB)(_losses(c=1.0))
    with pytest.raises(ValueError, match=">= 0"):
        FAMO(AB)(_losses(a=-1.0))
    model = toy_model()
    uw = UncertaintyWeighting(AB)
    with pytest.raises(ValueError, match="log_variance"):
        Trainer(model, torch.optim.SGD(model.parameters(), 0.1), LOSSES, weighting=uw)
    with pytest.raises(ValueError, match="not both"):
        Trainer(model, torch.optim.SGD(model.parameters(), 0.1), LOSSES, weights={"a": 1, "b": 1}, weighting=uw)
    with pytest.raises(ValueError, match="no loss weight"):
        Trainer(model, torch.optim.SGD(model.parameters(), 0.1), LOSSES, weighting=EqualWeighting(("a",)))


def test_famo_negative_loss_error_names_the_value_without_a_warning():
    # A loss that requires grad must not be turned into a float without detaching it (torch warns).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"task 'a' has -1\.0"):
            FAMO(AB)(_losses(a=-1.0, b=1.0))


# ---------------------------------------------------------------- the Trainer slot
def _weighted_trainer(method, folder, seed=5, model_seed=0):
    model = toy_model(seed=model_seed, dropout=0.3)
    weighting = _make(method, AB)
    opt = torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=1e-2)
    return (
        model,
        weighting,
        Trainer(model, opt, LOSSES, weighting=weighting, progress=False, checkpoint_dir=folder, seed=seed),
    )


@pytest.mark.parametrize("method", METHODS)
def test_kill_and_resume_is_bitwise_with_adaptive_weighting(method, tmp_path):
    x, y = toy_problem()
    full, full_weighting, trainer = _weighted_trainer(method, tmp_path / "full")
    trainer.fit(ShuffledBatches(x, y, 16), epochs=3)
    _, _, first = _weighted_trainer(method, tmp_path / "cut")
    first.fit(ShuffledBatches(x, y, 16), epochs=1)
    torch.manual_seed(123)
    resumed, resumed_weighting, trainer = _weighted_trainer(method, tmp_path / "cut", model_seed=99)
    trainer.fit(ShuffledBatches(x, y, 16, seed=42), epochs=3)
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert _same(full_weighting.state_dict(), resumed_weighting.state_dict())


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b) or (
            a.is_floating_point() and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())
        )
    return a == b


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_the_toy_problem(method):
    x, y = toy_problem()
    _, _, trainer = _weighted_trainer(method, None)
    trainer.fit(ShuffledBatches(x, y, 16), epochs=15)
    metrics = trainer.evaluate([(x, y)])
    assert metrics["a/acc"] > 0.6 and metrics["b/acc"] > 0.8, metrics


def test_user_defined_weighting_plugs_into_the_trainer():
    class MainFirst(TaskWeighting):
        def terms(self, losses):
            return {t: (1.0 if t == "a" else 0.1) * loss for t, loss in losses.items()}

    x, y = toy_problem()
    model = toy_model()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.1), LOSSES, weighting=MainFirst(AB), progress=False)
    batch = (x[:32], {k: v[:32] for k, v in y.items()})
    reference = toy_model()
    trainer.train_step(batch)
    out = reference(batch[0])
    (F.cross_entropy(out["a"], batch[1]["a"]) + 0.1 * F.cross_entropy(out["b"], batch[1]["b"])).backward()
    with torch.no_grad():
        for p in reference.parameters():
            p.sub_(0.1 * p.grad)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


needs_bf16 = pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16")


@needs_bf16
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_under_bf16_autocast(method, tmp_path):
    x, y = toy_problem()

    def train(epochs, folder, noise):
        torch.manual_seed(noise)
        model = toy_model(seed=noise, dropout=0.3)
        weighting = _make(method, AB)
        opt = torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=1e-2)
        trainer = Trainer(model, opt, LOSSES, weighting=weighting, progress=False, checkpoint_dir=folder, seed=5,
                          precision="bf16")  # fmt: skip
        history = trainer.fit(ShuffledBatches(x, y, 16, seed=noise), epochs=epochs)
        return model, weighting, history

    full, weighting, history = train(3, tmp_path / "full", 0)
    assert all(math.isfinite(v) for r in history for k, v in r.items() if k.startswith("train/"))
    assert all(math.isfinite(w) and w >= 0 for w in weighting.last_weights.values())
    train(1, tmp_path / "cut", 0)
    resumed, resumed_weighting, _ = train(3, tmp_path / "cut", 77)
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert _same(weighting.state_dict(), resumed_weighting.state_dict())
