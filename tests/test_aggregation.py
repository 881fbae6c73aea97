"""Gradient aggregators: hand-computed cases, the papers' properties, robustness, the Trainer slot."""

import math
import sys

import pytest
import torch
from helpers import LOSSES, ShuffledBatches, toy_model, toy_problem
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from mtlkit import LinearHead, MultiTaskModel, Trainer
from mtlkit.balancing import (
    IMTLG,
    MGDA,
    AlignedMTL,
    CAGrad,
    GradientAggregator,
    NashMTL,
    PCGrad,
    Scheduled,
    UPGrad,
)
from mtlkit.balancing._jacobian import task_jacobian
from mtlkit.nn import MLP, SingleTaskModels
from mtlkit.precision import bf16_supported
from mtlkit.schedules import ConstantWeights

AB = ("a", "b")
METHODS = {
    "mgda": MGDA,
    "pcgrad": lambda tasks: PCGrad(tasks, seed=0),
    "cagrad": lambda tasks: CAGrad(tasks, c=0.4),
    "nash": NashMTL,
    "imtlg": IMTLG,
    "aligned": AlignedMTL,
    "upgrad": UPGrad,
}


def _tasks(n):
    return tuple(f"t{i}" for i in range(n))


def _j(rows):
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- hand-computed cases
@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=4, max_size=4))
def test_mgda_two_tasks_matches_the_closed_form(values):
    g1, g2 = _j(values[:2]), _j(values[2:])
    if (g1 - g2).norm() < 1e-3:
        return
    # Sener & Koltun's Alg. 1 (T = 2): w_1 = clip((g2 - g1).g2 / ||g1 - g2||^2, 0, 1)
    w1 = float(((g2 - g1) @ g2 / (g1 - g2).pow(2).sum()).clamp(0, 1))
    expected = w1 * g1 + (1 - w1) * g2
    got = MGDA(AB).aggregate(torch.stack([g1, g2]))
    torch.testing.assert_close(got, expected, atol=1e-6 * (1 + float(g1.norm() + g2.norm())), rtol=1e-6)


def test_mgda_orthogonal_gradients_weigh_by_inverse_square_norm():
    # min ||sum w_t g_t||^2 over the simplex with g_t = t e_t: w_t proportional to 1 / t^2
    jacobian = _j([[1, 0, 0], [0, 2, 0], [0, 0, 3]])
    w = torch.tensor([1.0, 1 / 4, 1 / 9], dtype=torch.float64)
    w /= w.sum()
    torch.testing.assert_close(MGDA(_tasks(3)).aggregate(jacobian), w @ jacobian)


def test_pcgrad_hand_step_and_no_projection_without_conflict():
    # g1.g2 = -1: g1 -> g1 + g2/2 = (1/2, 1/2); g2 -> g2 + g1 = (0, 1)
    torch.testing.assert_close(PCGrad(AB).aggregate(_j([[1, 0], [-1, 1]])), _j([0.5, 1.5]))
    torch.testing.assert_close(PCGrad(AB).aggregate(_j([[1, 0], [1, 1]])), _j([2.0, 1.0]))


def test_pcgrad_three_tasks_depends_on_the_seeded_order():
    jacobian = _j([[1, 0], [-1, 0.2], [0.3, -1]])
    first = [PCGrad(_tasks(3), seed=1).aggregate(jacobian) for _ in range(2)]
    torch.testing.assert_close(first[0], first[1])  # same seed, same order
    draws = {tuple(PCGrad(_tasks(3), seed=s).aggregate(jacobian).round(decimals=6).tolist()) for s in range(8)}
    assert len(draws) > 1  # the order matters for three tasks, and the seed chooses it


@pytest.mark.parametrize("c", [0.0, 0.4, 1.0])
def test_cagrad_symmetric_orthogonal_gradients(c):
    # g_w = g_0 by symmetry: d = g_0 + c ||g_0|| g_0 / ||g_0|| = (1 + c) g_0
    got = CAGrad(AB, c=c).aggregate(_j([[1, 0], [0, 1]]))
    torch.testing.assert_close(got, (1 + c) * _j([0.5, 0.5]), atol=1e-6, rtol=1e-6)


def test_nash_orthogonal_gradients_weigh_by_inverse_norm():
    # G = diag(1, 4): alpha_t (G alpha)_t = 1 gives alpha = (1, 1/2)
    nash = NashMTL(AB)
    torch.testing.assert_close(nash.aggregate(_j([[1, 0], [0, 2]])), _j([1.0, 1.0]), atol=1e-5, rtol=1e-5)
    assert nash.last_weights == pytest.approx({"a": 1.0, "b": 0.5}, rel=1e-5)


def test_imtlg_hand_step():
    # equal projections on u_1 = e_1 and u_2 = e_2 with a_1 + a_2 = 1: a = (3/4, 1/4)
    imtl = IMTLG(AB)
    torch.testing.assert_close(imtl.aggregate(_j([[1, 0], [0, 3]])), _j([0.75, 0.75]))
    assert imtl.last_weights == pytest.approx({"a": 0.75, "b": 0.25})


def test_aligned_mtl_hand_step():
    # singular values 1 and 4; sigma = 1; B = diag(1, 1/4): aligned gradients e_1 and e_2
    torch.testing.assert_close(AlignedMTL(AB).aggregate(_j([[1, 0], [0, 4]])), _j([1.0, 1.0]))
    weighted = AlignedMTL(AB, task_weights={"a": 1.0, "b": 0.0}).aggregate(_j([[1, 0], [0, 4]]))
    torch.testing.assert_close(weighted, _j([1.0, 0.0]))


def test_upgrad_hand_step():
    # dual cone {v1 >= 0, v2 >= v1}: g1 = (1, 0) -> (1/2, 1/2), g2 = (-1, 1) -> (0, 1); mean (1/4, 3/4)
    torch.testing.assert_close(UPGrad(AB).aggregate(_j([[1, 0], [-1, 1]])), _j([0.25, 0.75]), atol=1e-8, rtol=1e-7)


# ---------------------------------------------------------------- the papers' properties
jacobians = st.integers(2, 5).flatmap(
    lambda t: st.integers(2, 6).flatmap(
        lambda p: st.lists(st.floats(-10, 10), min_size=t * p, max_size=t * p).map(
            lambda v: torch.tensor(v, dtype=torch.float64).reshape(t, p)
        )
    )
)


def _nonzero(jacobian):
    return bool((jacobian.norm(dim=1) > 1e-3).all())


@settings(max_examples=60, deadline=None)
@given(jacobians)
def test_mgda_result_is_the_min_norm_convex_combination(jacobian):
    if not _nonzero(jacobian):
        return
    mgda = MGDA(_tasks(len(jacobian)))
    d = mgda.aggregate(jacobian)
    w = torch.tensor([mgda.last_weights[t] for t in mgda.tasks], dtype=torch.float64)
    scale = float(jacobian.norm(dim=1).max()) ** 2
    assert bool((w >= 0).all()) and float(w.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(w @ jacobian, d)
    # KKT of min ||J^T w||^2 on the simplex: g_t.d >= ||d||^2, with equality where w_t > 0
    slack = jacobian @ d - d @ d
    assert float(slack.min()) >= -1e-6 * scale
    assert float((w * slack).abs().max()) <= 1e-6 * scale


@settings(max_examples=60, deadline=None)
@given(jacobians)
def test_pcgrad_two_tasks_no_conflict_after_projection(jacobian):
    jacobian = jacobian[:2]
    d = PCGrad(AB).aggregate(jacobian)
    scale = float(jacobian.norm(dim=1).max()) ** 2
    assert float((jacobian @ d).min()) >= -1e-9 * max(scale, 1.0)


@settings(max_examples=60, deadline=None)
@given(jacobians)
def test_upgrad_update_conflicts_with_no_task(jacobian):
    d = UPGrad(_tasks(len(jacobian))).aggregate(jacobian)
    scale = float(jacobian.norm(dim=1).max()) ** 2
    assert float((jacobian @ d).min()) >= -1e-6 * max(scale, 1e-12)


@settings(max_examples=40, deadline=None)
@given(jacobians)
def test_imtlg_projections_on_the_unit_gradients_are_equal(jacobian):
    if not _nonzero(jacobian) or torch.linalg.matrix_rank(jacobian) < len(jacobian):
        return
    imtl = IMTLG(_tasks(len(jacobian)))
    d = imtl.aggregate(jacobian)
    units = jacobian / jacobian.norm(dim=1, keepdim=True)
    projections = units @ d
    assert sum(imtl.last_weights.values()) == pytest.approx(1.0)
    torch.testing.assert_close(projections, projections[:1].expand_as(projections), atol=1e-6, rtol=1e-6)


# A task with a zero gradient puts 0 in the hull: the dual's g_w vanishes (once gave weights of 1e10).
ZERO_TASK = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]], dtype=torch.float64)


@settings(max_examples=40, deadline=None)
@given(jacobians, st.sampled_from([0.2, 0.5, 1.0]))
@example(ZERO_TASK, 0.5)
@example(ZERO_TASK[[1, 0, 2, 3]], 0.5)
def test_cagrad_update_maximises_the_worst_improvement_in_its_ball(jacobian, c):
    # Liu et al.'s primal: d = argmax min_t g_t.d over the ball ||d - g_0|| <= c ||g_0||; no point of
    # the ball does better than the update, and the update lies in the ball (on its surface).
    d = CAGrad(_tasks(len(jacobian)), c=c).aggregate(jacobian)
    g0 = jacobian.mean(dim=0)
    radius = c * float(g0.norm())
    scale = float(jacobian.norm(dim=1).max()) ** 2
    assert float((d - g0).norm()) <= radius * (1 + 1e-6) + 1e-9
    directions = torch.randn(2000, jacobian.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    others = g0 + radius * directions / directions.norm(dim=1, keepdim=True)
    best_other = float((others @ jacobian.T).min(dim=1).values.max())
    assert float((jacobian @ d).min()) >= best_other - 1e-6 * max(scale, 1.0)


def test_cagrad_weights_stay_bounded_where_a_gradient_combination_vanishes():
    cagrad = CAGrad(_tasks(4), c=0.5)
    d = cagrad.aggregate(ZERO_TASK)
    assert max(abs(w) for w in cagrad.last_weights.values()) < 10  # the weights d = G^T w
    assert float((ZERO_TASK @ d).min()) >= -1e-6  # the optimum here: no task made worse


@settings(max_examples=40, deadline=None)
@given(jacobians)
def test_nash_weights_solve_the_bargaining_condition(jacobian):
    if not _nonzero(jacobian) or len(jacobian) > jacobian.shape[1]:
        return  # no bargaining solution without linearly independent gradients
    if torch.linalg.svdvals(jacobian / jacobian.norm(dim=1, keepdim=True)).min() < 0.1:
        return  # near-dependent gradients: the ridge, not the bargaining condition, sets the weights
    nash = NashMTL(_tasks(len(jacobian)))
    d = nash.aggregate(jacobian)
    alpha = torch.tensor([nash.last_weights[t] for t in nash.tasks], dtype=torch.float64)
    # alpha_t g_t.d = 1 for every task (up to the ridge and the solver's tolerance)
    torch.testing.assert_close(alpha * (jacobian @ d), torch.ones_like(alpha), atol=2e-3, rtol=2e-3)


@settings(max_examples=40, deadline=None)
@given(jacobians)
def test_aligned_mtl_gradients_are_perfectly_conditioned(jacobian):
    if len(jacobian) > jacobian.shape[1] or torch.linalg.svdvals(jacobian).min() < 1e-2:
        return  # not of full row rank
    aligned = AlignedMTL(_tasks(len(jacobian)))
    n = len(jacobian)
    # the columns of B (one per unit task weight vector) give the aligned gradients J^T B
    b = torch.stack([_with_weights(aligned, jacobian, torch.eye(n, dtype=torch.float64)[k]) for k in range(n)])
    aligned_gram = b @ jacobian @ jacobian.T @ b.T
    sigma2 = float(torch.linalg.svdvals(jacobian).min()) ** 2
    torch.testing.assert_close(aligned_gram, sigma2 * torch.eye(n, dtype=torch.float64), atol=1e-6, rtol=1e-6)


def _with_weights(aligned, jacobian, omega):
    aligned.task_weights = {t: float(v) for t, v in zip(aligned.tasks, omega, strict=True)}
    aligned.aggregate(jacobian)
    return torch.tensor([aligned.last_weights[t] for t in aligned.tasks], dtype=torch.float64)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(sorted(METHODS)),
    jacobians,
    st.lists(st.sampled_from([0.0, 1e-4, 1.0, 1e4]), min_size=5, max_size=5),
    st.booleans(),
)
def test_every_method_is_finite_for_zero_colinear_and_scaled_gradients(method, jacobian, scales, colinear):
    jacobian = jacobian * torch.tensor(scales[: len(jacobian)], dtype=torch.float64)[:, None]
    if colinear:
        jacobian[1] = -3.0 * jacobian[0]
    aggregator = METHODS[method](_tasks(len(jacobian)))
    d = aggregator.aggregate(jacobian)
    assert bool(torch.isfinite(d).all())
    assert all(math.isfinite(w) for w in aggregator.last_weights.values())


@pytest.mark.parametrize("method", ["mgda", "pcgrad", "cagrad", "imtlg", "aligned", "upgrad"])
def test_weights_do_not_change_when_every_gradient_is_rescaled(method):
    jacobian = _j([[1.0, 0.2, -0.5], [-0.7, 1.0, 0.1], [0.3, -0.4, 1.2]])
    directions = []
    for factor in (1.0, 1e-4, 1e4):
        d = METHODS[method](_tasks(3)).aggregate(factor * jacobian)
        directions.append(d / factor)
    for d in directions[1:]:
        torch.testing.assert_close(d, directions[0], atol=1e-5, rtol=1e-5)


def test_a_missing_solver_is_named_with_its_extra_and_the_solver_free_methods_need_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "cvxpy", None)  # what `import cvxpy` meets when it is not installed
    monkeypatch.setitem(sys.modules, "qpsolvers", None)
    conflicting = _j([[1, 0], [-1, 1]])
    for method, solver in ((NashMTL, "cvxpy"), (CAGrad, "cvxpy"), (MGDA, "qpsolvers"), (UPGrad, "qpsolvers")):
        with pytest.raises(ImportError, match=rf"{solver}, which is not installed: pip install 'mtlkit\[solvers\]'"):
            method(AB).aggregate(conflicting)
    for method in (PCGrad, IMTLG, AlignedMTL):
        assert bool(torch.isfinite(method(AB).aggregate(conflicting)).all())


# ---------------------------------------------------------------- the per-task gradient machinery
def test_task_jacobian_matches_a_loop_oracle_and_sums_the_heads():
    torch.manual_seed(0)
    model = MultiTaskModel(MLP(3, [4]), {t: LinearHead(4, 2) for t in _tasks(3)}).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    out = model(x)
    losses = [(out[t] ** 2).mean() for t in _tasks(3)]
    shared = model.shared_parameters()
    heads = list(model.heads.parameters())
    jacobian, summed = task_jacobian(losses, shared, heads, retain_graph=True, dtype=torch.float64)
    for k, loss in enumerate(losses):
        row = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared, retain_graph=True)])
        torch.testing.assert_close(jacobian[k], row)
    total = torch.autograd.grad(sum(losses), heads)
    for got, expected in zip(summed, total, strict=True):
        torch.testing.assert_close(got, expected)


# ---------------------------------------------------------------- in a model and the Trainer
def _two_head_model(seed=0):
    torch.manual_seed(seed)
    return MultiTaskModel(MLP(3, [4]), {"a": LinearHead(4, 1), "b": LinearHead(4, 1)}).double()


def _losses(model, x, scale_b=1.0):
    out = model(x)
    return {"a": ((out["a"] - 1) ** 2).mean(), "b": scale_b * ((out["b"] + 1) ** 2).mean()}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_shared_parameters_get_the_aggregate_and_heads_their_own_gradient(method):
    x = torch.randn(6, 3, dtype=torch.float64)
    model, reference = _two_head_model(), _two_head_model()
    aggregator = METHODS[method](AB)
    aggregator.attach(model)
    assert aggregator.backward(_losses(model, x, scale_b=10.0))
    losses = _losses(reference, x, scale_b=10.0)
    shared = reference.shared_parameters()
    jacobian = torch.stack(
        [torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[t], shared, retain_graph=True)]) for t in AB]
    )
    expected = METHODS[method](AB).aggregate(jacobian)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()]), expected)
    for t in AB:
        own = torch.autograd.grad(losses[t], list(reference.heads[t].parameters()), retain_graph=True)
        for p, g in zip(model.heads[t].parameters(), own, strict=True):
            torch.testing.assert_close(p.grad, g)


@pytest.mark.parametrize("method", [MGDA, IMTLG, AlignedMTL])
def test_representation_level_gradients(method):
    x = torch.randn(6, 3, dtype=torch.float64)
    model, reference = _two_head_model(), _two_head_model()
    aggregator = method(AB, representation=True)
    aggregator.attach(model)
    aggregator.backward(_losses(model, x))
    features = reference.trunk(x)
    outputs = {t: reference.heads[t](features) for t in AB}
    losses = {"a": ((outputs["a"] - 1) ** 2).mean(), "b": ((outputs["b"] + 1) ** 2).mean()}
    z_grads = torch.stack([torch.autograd.grad(losses[t], features, retain_graph=True)[0].reshape(-1) for t in AB])
    combined = method(AB).aggregate(z_grads).view_as(features)
    expected = torch.autograd.grad(features, reference.shared_parameters(), grad_outputs=combined)
    for p, g in zip(model.shared_parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_methods_that_do_not_allow_representation_gradients_say_so():
    for method in (PCGrad, CAGrad, NashMTL, UPGrad):
        with pytest.raises(ValueError, match="shared parameters only"):
            method(AB, representation=True)
    with pytest.raises(ValueError, match="shared parameters"):
        MGDA(AB).attach(SingleTaskModels({t: MLP(3, [2]) for t in AB}))
    with pytest.raises(ValueError, match="representation"):
        MGDA(AB, representation=True).attach(_NoTrunk())
    with pytest.raises(ValueError, match="c must be"):
        CAGrad(AB, c=-1.0)
    with pytest.raises(ValueError, match="update_every"):
        NashMTL(AB, update_every=0)
    with pytest.raises(ValueError, match="task_weights"):
        AlignedMTL(AB, task_weights={"a": 1.0})


class _NoTrunk(MultiTaskModel):
    def __init__(self):
        super().__init__({t: MLP(3, [2]) for t in AB}, {t: LinearHead(2, 1) for t in AB})

    def shared_modules(self):
        return [self.heads["a"]]


def test_nash_update_every_reuses_weights_with_one_backward_pass():
    x = torch.randn(6, 3, dtype=torch.float64)
    model, reference = _two_head_model(), _two_head_model()
    nash = NashMTL(AB, update_every=3)
    nash.attach(model)
    nash.backward(_losses(model, x))
    alpha = dict(nash.last_weights)
    model.zero_grad()
    nash.backward(_losses(model, x, scale_b=2.0))  # step 2: the weights of step 1, one backward pass
    assert nash.last_weights == alpha
    losses = _losses(reference, x, scale_b=2.0)
    (alpha["a"] * losses["a"] + alpha["b"] * losses["b"]).backward(retain_graph=True)
    for p, q in zip(model.shared_parameters(), reference.shared_parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    for t in AB:  # heads: their own task's gradient, not alpha-weighted
        own = torch.autograd.grad(losses[t], list(reference.heads[t].parameters()), retain_graph=True)
        for p, g in zip(model.heads[t].parameters(), own, strict=True):
            torch.testing.assert_close(p.grad, g)
    nash.backward(_losses(model, x))
    nash.backward(_losses(model, x, scale_b=5.0))  # step 4: recomputed
    assert nash.last_weights != alpha


def test_schedule_on_top_of_an_aggregator_scales_the_task_gradients():
    x = torch.randn(6, 3, dtype=torch.float64)
    plain, scheduled = _two_head_model(), _two_head_model()
    mgda = MGDA(AB)
    mgda.attach(plain)
    mgda.backward({"a": _losses(plain, x)["a"], "b": 0.5 * _losses(plain, x)["b"]})
    composed = Scheduled(ConstantWeights({"a": 1.0, "b": 0.5}), MGDA(AB))
    composed.attach(scheduled)
    composed.backward(_losses(scheduled, x))
    for p, q in zip(plain.parameters(), scheduled.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def _trainer(method, folder=None, seed=5, model_seed=0, precision="fp32"):
    model = toy_model(seed=model_seed, dropout=0.3)
    weighting = METHODS[method](AB) if method != "nash-k" else NashMTL(AB, update_every=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = Trainer(model, opt, LOSSES, weighting=weighting, progress=False, checkpoint_dir=folder, seed=seed,
                      precision=precision)  # fmt: skip
    return model, weighting, trainer


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_aggregator_trains_the_toy_problem(method):
    x, y = toy_problem()
    _, _, trainer = _trainer(method)
    trainer.fit(ShuffledBatches(x, y, 16), epochs=15)
    metrics = trainer.evaluate([(x, y)])
    assert metrics["a/acc"] > 0.6 and metrics["b/acc"] > 0.8, metrics


@pytest.mark.parametrize("method", ["pcgrad", "nash-k", "mgda"])
def test_kill_and_resume_is_bitwise_with_an_aggregator(method, tmp_path):
    x, y = toy_problem()
    full, full_weighting, trainer = _trainer(method, tmp_path / "full")
    trainer.fit(ShuffledBatches(x, y, 16), epochs=3)
    _, _, first = _trainer(method, tmp_path / "cut")
    first.fit(ShuffledBatches(x, y, 16), epochs=1)
    resumed, resumed_weighting, trainer = _trainer(method, tmp_path / "cut", model_seed=99)
    trainer.fit(ShuffledBatches(x, y, 16, seed=42), epochs=3)
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert full_weighting.last_weights == resumed_weighting.last_weights


needs_bf16 = pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16")


@needs_bf16
@pytest.mark.parametrize("method", sorted(METHODS))
def test_aggregation_runs_in_float32_under_bf16(method, monkeypatch):
    seen = []
    original = GradientAggregator._weights_of

    def spy(self, names, gramian):
        seen.append(gramian.dtype)
        return original(self, names, gramian)

    monkeypatch.setattr(GradientAggregator, "_weights_of", spy)
    jacobians = []
    original_jacobian = task_jacobian

    def spy_jacobian(*args, **kwargs):
        out = original_jacobian(*args, **kwargs)
        jacobians.append(out[0].dtype)
        return out

    monkeypatch.setattr("mtlkit.balancing._aggregator.task_jacobian", spy_jacobian)
    x, y = toy_problem()
    model, weighting, trainer = _trainer(method, precision="bf16")
    history = trainer.fit(ShuffledBatches(x, y, 16), epochs=2)
    assert all(math.isfinite(v) for r in history for k, v in r.items() if k.startswith("train/"))
    assert seen and set(seen) == {torch.float64} and set(jacobians) == {torch.float32}
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())
    assert all(math.isfinite(w) for w in weighting.last_weights.values())


def test_user_defined_aggregator_plugs_into_the_trainer():
    class Sum(GradientAggregator):
        def weights(self, gramian):
            return torch.ones(len(gramian), dtype=torch.float64)

    x, y = toy_problem()
    model, reference = toy_model(), toy_model()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.1), LOSSES, weighting=Sum(AB), progress=False)
    batch = (x[:32], {k: v[:32] for k, v in y.items()})
    trainer.train_step(batch)
    out = reference(batch[0])
    (F.cross_entropy(out["a"], batch[1]["a"]) + F.cross_entropy(out["b"], batch[1]["b"])).backward()
    with torch.no_grad():
        for p in reference.parameters():
            p.sub_(0.1 * p.grad)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("representation", [False, True])
def test_bf16_autocast_gradients_are_aggregated_in_float32(representation):
    # CPU autocast runs bf16 kernels even where the Trainer would fall back to fp32 (no native bf16)
    torch.manual_seed(0)
    model = MultiTaskModel(MLP(3, [8]), {"a": LinearHead(8, 2), "b": LinearHead(8, 2)})
    mgda = MGDA(AB, representation=representation)
    mgda.attach(model)
    gramians = []
    original = mgda._weights_of
    mgda._weights_of = lambda names, gramian: (gramians.append(gramian.dtype), original(names, gramian))[1]
    x = torch.randn(16, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        losses = {t: 1e-4 * F.cross_entropy(out[t], torch.zeros(16, dtype=torch.long)) for t in AB}
    assert out["a"].dtype == torch.bfloat16
    mgda.backward(losses)
    assert gramians == [torch.float64]
    assert all(p.grad.dtype == torch.float32 and bool(torch.isfinite(p.grad).all()) for p in model.parameters())
