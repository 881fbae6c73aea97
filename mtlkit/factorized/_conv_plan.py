r"""Convolution plans: a factorised convolution as projection, one convolution and an einsum, cheapest first.

A convolution of an image ``x[b, i, h, w]`` with a kernel ``W[p, q, i, o]`` is a contraction of
the *unfolded* image ``X[b, i, p, q, l]`` (``l`` an output position; ``torch.nn.functional.unfold``)
with ``W`` over ``i, p, q``. For a factorised task-stacked kernel
``W[p, q, i, o, t] = network of factors`` the whole layer is therefore one einsum
``X[b, i, p, q, l] · factors → y[b, t, o, l]``, and every pairwise order of it — composing the
kernels first is one of them — has a cost in multiply-adds (the product of the sizes of all
indices a step touches; for a step with ``X`` that is exactly the cost of the convolution it runs).

Executing a step of ``X`` as such an einsum would materialise the unfolded image (``kh·kw``
times the input); instead every plan applies the window exactly once, as one ``conv2d`` of the
image with a kernel composed from the factors that carry a kernel axis (``p`` or ``q``) and any
others chosen — grouped when an index stays on both sides (the task axis of per-task inputs, or
a CP rank: depthwise). Before it, factors that carry neither kernel axis may meet the image at
``H·W`` instead of ``kh·kw·H'·W'`` positions, as ``1×1`` convolutions: Tucker's ``U_in`` (the
rest is then the Tucker-2 form of Kim et al. 2016: ``1×1`` in, core kernels, ``1×1`` out), CP's
input factor (CP as a separable convolution, Lebedev et al. 2015: ``1×1`` in, a depthwise
window, ``1×1`` out), TT's input core. After it, the remaining factors are an einsum.
:func:`plan_convolution` tries every connected set of projected factors (none included) and
every kernel set, plans each einsum with :func:`~mtlkit.factorized.plan_contraction`, and keeps
the cheapest total in multiply-adds. No constant is fitted to any machine.

A kernel that carries the task axis can also be split along it: ``T`` convolutions, one per task
(the shared image, or task ``t``'s images, with task ``t``'s kernel), stacked into the layout the
single convolution gives. The arithmetic is the same, the speed is not: on CPU, oneDNN runs the
DMTRL LeNet's conv1 composed into one ``1 → 320`` convolution about 4.7× slower than ten
``1 → 32`` ones (``benchmarks/conv1_fused_probe.py``), while on an accelerator one call saves
``T - 1`` launches. Multiply-adds cannot tell the two apart, so the planner keeps the single
convolution (of two plans that tie, the first made) unless ``split_tasks=True`` is asked for,
and the timed trial (:mod:`mtlkit.factorized._trial`), which times both, picks the split where
it is faster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mtlkit.factorized._plan import ContractionPlan, ContractionStep, best_multiply_adds, eager, plan_contraction

__all__ = ["ConvolutionPlan", "Window", "best_convolution_multiply_adds", "convolution_plans", "plan_convolution"]

# Index letters (rank indices of factor networks are upper case, so these never collide).
KERNEL = "pq"  # kernel rows, columns: the weight's first two modes
SPATIAL = "hw"  # image rows, columns
POSITIONS = "l"  # output positions, H'·W'
WEIGHT_MODES = "pqiot"  # (kh, kw, in, out, T)
OUTPUT = "btol"  # batch-major: the (T, B, out, H', W') output is a view of a (B, T·out, H', W') buffer


@dataclass(frozen=True)
class Window:
    """Geometry of a 2-d convolution: kernel, stride, dilation and explicit padding (top, bottom, left, right)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    @classmethod
    def of(
        cls,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        dilation: tuple[int, int],
        padding: tuple[int, int] | str,
    ) -> Window:
        """As ``nn.Conv2d`` takes it (``padding`` an int pair, ``"valid"`` or ``"same"``)."""
        if padding == "valid":
            return cls(kernel, stride, dilation)
        if padding == "same":
            # torch's "same": total d·(k-1) per axis, the odd one extra at the end.
            pads = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            top, left = pads[0] // 2, pads[1] // 2
            return cls(kernel, stride, dilation, (top, pads[0] - top, left, pads[1] - left))
        if isinstance(padding, str):
            raise ValueError(f"Window: padding must be an int pair, 'valid' or 'same', got {padding!r}")
        return cls(kernel, stride, dilation, (padding[0], padding[0], padding[1], padding[1]))

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        top, bottom, left, right = self.padding
        sizes = []
        for size, pad, k, s, d in zip(
            (height, width), (top + bottom, left + right), self.kernel, self.stride, self.dilation, strict=True
        ):
            sizes.append((size + pad - d * (k - 1) - 1) // s + 1)
        if min(sizes) < 1:
            raise ValueError(f"Window {self}: input {height}×{width} is smaller than the (dilated) kernel")
        return sizes[0], sizes[1]

    def symmetric(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """``images`` padded explicitly where the padding is asymmetric, and the symmetric rest."""
        top, bottom, left, right = self.padding
        if top == bottom and left == right:
            return images, (top, left)
        return F.pad(images, (left, right, top, bottom)), (0, 0)


def _ordered(indices: Sequence[str], order: str) -> list[str]:
    """``indices`` in the order of ``order`` (those not in it after, as they came)."""
    return sorted(indices, key=lambda i: order.index(i) if i in order else len(order))


def _layout(
    xs: str, ys: str, result: str, window: Window | None
) -> tuple[list[str], list[str], list[str], list[str]] | None:
    """The channel indices of ``xs ⊛ ys → result`` as one ``conv2d``: ``(batch, groups, contracted,
    out)``, or ``None`` when the step is not a convolution (see :func:`_conv_step`)."""
    channels = xs[:-2]
    if window is None:
        if any(k in ys for k in KERNEL):
            return None
    elif not all(k in ys and k not in result for k in KERNEL):
        return None
    outer = [i for i in channels if i not in ys]  # conv batch
    groups = [i for i in channels if i in ys and i in result]
    inner = [i for i in channels if i in ys and i not in result]  # contracted channels
    out = [i for i in ys if i not in channels and i not in KERNEL]
    if any(i not in result for i in outer + out):
        return None  # an index summed on one side only: leave it to einsum
    return _ordered(outer, OUTPUT), _ordered(groups, OUTPUT), inner, _ordered(out, OUTPUT)


def _conv_step(
    image: tuple[str, Tensor],
    other: tuple[str, Tensor],
    result: str,
    window: Window | None,
    bias: Tensor | None = None,
) -> tuple[str, Tensor] | None:
    """``image · other → result`` as one ``conv2d``, or ``None`` when the step is not a convolution.

    ``image`` holds ``…hw``; ``window`` is the layer's (``other`` then holds ``p`` and ``q`` and
    both are contracted) or ``None`` for a ``1×1`` convolution (no kernel axis involved).
    ``bias`` (one value per output channel ``o``) is added by ``conv2d``, for a step whose only
    output channel index is ``o``.
    """
    (xs, x), (ys, y) = image, other
    layout = _layout(xs, ys, result, window)
    if layout is None:
        return None
    outer, groups, inner, out = layout
    assert bias is None or (not groups and out == ["o"]), "a conv2d bias needs the output channels to be o alone"
    size = dict(zip(xs, x.shape, strict=True)) | dict(zip(ys, y.shape, strict=True))

    def prod(indices: Sequence[str]) -> int:
        return math.prod(size[i] for i in indices)

    kernel = "".join(KERNEL) if window is not None else ""
    x = x.permute(*(xs.index(i) for i in [*outer, *groups, *inner, *SPATIAL]))
    x = x.reshape(prod(outer), prod(groups) * prod(inner), *x.shape[-2:])
    y = y.permute(*(ys.index(i) for i in [*groups, *out, *inner, *kernel]))
    y = y.reshape(prod(groups) * prod(out), prod(inner), *(y.shape[-2:] if kernel else (1, 1)))
    if window is None:
        z = F.conv2d(x, y, groups=prod(groups))
        shape, tail = tuple(z.shape[-2:]), SPATIAL
    else:
        x, padding = window.symmetric(x)
        z = F.conv2d(x, y, bias, window.stride, padding, window.dilation, prod(groups))
        shape, tail = (z.shape[-2] * z.shape[-1],), POSITIONS
    sizes = [size[i] for i in [*outer, *groups, *out]]
    return "".join([*outer, *groups, *out]) + tail, z.reshape(*sizes, *shape)


def _conv_per_task(
    image: tuple[str, Tensor],
    kernel: tuple[str, Tensor],
    result: str,
    window: Window,
    bias: Tensor | None = None,
) -> tuple[str, Tensor, bool]:
    """``image ⊛ kernel → result`` as ``T`` convolutions, one per task, stacked where the fused one has ``t``.

    ``kernel`` carries the task axis ``t``: task ``j`` convolves the image (shared input) or the
    image's task ``j`` (per-task input) with ``kernel[..., t=j, ...]``. The result has the
    subscripts and the memory layout of the single :func:`_conv_step` it replaces. ``bias``
    (``(T, out)``, given only where the result is the layer's output) is added by those
    convolutions where their output channels are ``o`` alone; the flag says whether it was.
    """
    (xs, x), (ys, y) = image, kernel
    layout = _layout(xs, ys, result, window)
    assert layout is not None and "t" in ys, "a per-task convolution needs a window step whose kernel carries t"
    outer, groups, _, out = layout
    order = "".join([*outer, *groups, *out])
    images = x.unbind(xs.index("t")) if "t" in xs else [x] * y.shape[ys.index("t")]
    kernels = y.unbind(ys.index("t"))
    xs_task, ys_task, result_task = (s.replace("t", "") for s in (xs, ys, result))
    task_layout = _layout(xs_task, ys_task, result_task, window)
    folded = bias is not None and task_layout is not None and not task_layout[1] and task_layout[3] == ["o"]
    biases = bias.unbind(0) if folded and bias is not None else [None] * len(kernels)
    outputs = []
    for x_task, y_task, bias_task in zip(images, kernels, biases, strict=True):
        done = _conv_step((xs_task, x_task), (ys_task, y_task), result_task, window, bias_task)
        assert done is not None, "a window step without its task axis is still one"
        outputs.append(done[1])
    return order + POSITIONS, torch.stack(outputs, dim=order.index("t")), folded


def _run(plan: ContractionPlan, image: Tensor, image_subscripts: str, factors: Sequence[Tensor]) -> tuple[str, Tensor]:
    """Execute the projection ``plan`` on ``[image, *factors]``: image steps as ``1×1`` convolutions."""
    inputs = plan.equation.split("->")[0].split(",")
    live: list[tuple[str, Tensor, bool]] = [(image_subscripts, image, True)]
    live += [(s, t, False) for s, t in zip(inputs[1:], factors, strict=True)]
    for step, positions in zip(plan.steps, plan.path, strict=True):
        taken = [live[p] for p in positions]
        for p in sorted(positions, reverse=True):
            del live[p]
        result = step.equation.split("->")[1]
        spatial = [t for t in taken if t[2]]
        if spatial and len(taken) == 2:
            other = taken[1] if taken[0][2] else taken[0]
            done = _conv_step(spatial[0][:2], other[:2], result, None)
            if done is not None:
                live.append((*done, True))
                continue
        equation = f"{','.join(s for s, _, _ in taken)}->{result}"
        live.append((result, torch.einsum(equation, *(t for _, t, _ in taken)), bool(spatial)))
    ((subscripts, tensor, _),) = live
    return subscripts, tensor


def _kernel_carries_tasks(convolution: ContractionStep) -> bool:
    return "t" in convolution.equation.split("->")[0].split(",")[1]


@dataclass(frozen=True)
class ConvolutionPlan:
    """A factorised convolution's plan: projection, kernel, one convolution, the rest.

    ``project`` names the factors contracted with the image before the window is applied
    (``()``: none; ``before`` is that contraction's plan, run as ``1×1`` convolutions);
    ``kernel_factors`` the factors composed into the kernel the (projected) image is convolved
    with (``kernel`` is their plan, ``None`` for one factor); ``convolution`` is that step; and
    ``after`` contracts its result with the remaining factors into ``y[b, t, o, l]`` (``None``
    when none remain). ``multiply_adds`` is the total. ``split_tasks``: the convolution runs as
    ``T`` convolutions, one per task, each with its task's slice of the kernel (which then carries
    the task axis), instead of as one fused or task-grouped convolution; the arithmetic, the result
    and the rest of the plan are the same. Call it with the image and the factors (in
    :meth:`~mtlkit.factorized.Factorization.network` order) to run it.
    """

    project: tuple[str, ...]
    before: ContractionPlan | None
    kernel_factors: tuple[str, ...]
    kernel: ContractionPlan | None
    convolution: ContractionStep
    after: ContractionPlan | None
    window: Window
    multiply_adds: int
    split_tasks: bool = False

    def __call__(
        self, images: Tensor, factors: Sequence[Tensor], names: Sequence[str], bias: Tensor | None = None
    ) -> Tensor:
        """``y[b, t, o, l]`` for ``images`` ``(B, C, H, W)`` (subscripts ``bihw``) or ``(T, B, C, H, W)``,
        plus ``bias[t, o]`` when given: inside the per-task convolutions where those give the output
        (as ``T`` ``nn.Conv2d`` add theirs, rather than in a pass over the whole output), else after."""
        by_name = dict(zip(names, factors, strict=True))
        subscripts = "bihw" if images.dim() == 4 else "tbihw"
        if self.before is not None:
            subscripts, images = _run(self.before, images, subscripts, [by_name[n] for n in self.before.names[1:]])
        kernel_terms, conv_result = self.convolution.equation.split("->")
        kernel_subscripts = kernel_terms.split(",")[1]
        if self.kernel is None:
            kernel = by_name[self.kernel_factors[0]]
        else:
            kernel = self.kernel([by_name[n] for n in self.kernel.names])
        done: tuple[str, Tensor] | None
        if self.split_tasks:
            last = self.after is None
            stacked, split, folded = _conv_per_task(
                (subscripts, images), (kernel_subscripts, kernel), conv_result, self.window, bias if last else None
            )
            done, bias = (stacked, split), None if folded else bias
        else:
            done = _conv_step((subscripts, images), (kernel_subscripts, kernel), conv_result, self.window)
        assert done is not None, "a window step always contracts both kernel axes"
        result, outputs = done
        if self.after is not None:
            result = self.after.equation.split("->")[1]
            terms = self.after.equation.split("->")[0].split(",")
            # The plan's first operand is the convolution's output, in the order _conv_step made it.
            moved = outputs.permute(*(done[0].index(i) for i in terms[0]))
            outputs = self.after([moved, *(by_name[n] for n in self.after.names[1:])])
        outputs = outputs if result == OUTPUT else outputs.permute(*(result.index(i) for i in OUTPUT))
        return outputs if bias is None else outputs + bias.unsqueeze(-1)

    @property
    def composes_first(self) -> bool:
        """Whether every factor goes into the kernel: ``T`` dense-shaped kernels, then the convolution."""
        return not self.project and self.after is None

    @property
    def kernel_carries_tasks(self) -> bool:
        """Whether the convolution's kernel has the task axis ``t`` (so it can run split per task)."""
        return _kernel_carries_tasks(self.convolution)

    @property
    def steps(self) -> tuple[str, ...]:
        """Every pairwise step, in order, as ``left · right: equation (multiply-adds)``."""
        listed = [s for p in (self.before, self.kernel) if p is not None for s in p.steps]
        listed.append(self.convolution)
        listed += [] if self.after is None else list(self.after.steps)
        return tuple(f"{s.left} · {s.right}: {s.equation}  ({s.multiply_adds:,})" for s in listed)

    def __str__(self) -> str:
        def indented(plan: ContractionPlan) -> str:
            return str(plan).replace("\n", "\n  ")

        what = f"{', '.join(self.project)} contracted with the image first" if self.project else "no projection"
        lines = [f"convolution ({self.multiply_adds:,} multiply-adds), {what}"]
        if self.before is not None:
            lines.append(f"  1×1, before the window: {indented(self.before)}")
        if self.kernel is not None:
            lines.append(f"  kernel: {indented(self.kernel)}")
        step = self.convolution
        how = ", one per task" if self.split_tasks else ""
        lines.append(f"  convolution{how}: {step.left} ⊛ {step.right}: {step.equation}  ({step.multiply_adds:,})")
        if self.after is not None:
            lines.append(f"  after: {indented(self.after)}")
        return "\n".join(lines)


def _connected_sets(
    subscripts: Sequence[str], allowed: Sequence[int], start: set[str], required: Sequence[int] = ()
) -> list[tuple[int, ...]]:
    """Sets of ``allowed`` factors connected to the indices ``start`` (through shared indices), each
    containing ``required``; with ``required``, the set may start anywhere among them."""
    found: list[tuple[int, ...]] = []

    def grow(chosen: tuple[int, ...], reach: set[str]) -> None:
        if chosen in found:
            return
        found.append(chosen)
        for n in allowed:
            if n not in chosen and reach & set(subscripts[n]):
                grow(tuple(sorted((*chosen, n))), reach | set(subscripts[n]))

    if required:
        grow(tuple(sorted(required)), start.union(*(subscripts[n] for n in required)))
    else:
        grow((), start)
    return sorted((c for c in found if set(required) <= set(c)), key=lambda c: (len(c), c))


def _projections(subscripts: Sequence[str], names: Sequence[str], image: str) -> list[tuple[int, ...]]:
    """Sets of factors that may meet the image before the window: window-free, connected to the image."""
    free = [n for n, s in enumerate(subscripts) if not any(k in s for k in KERNEL)]
    return _connected_sets(subscripts, free, set(image) - set(SPATIAL))


def _kernels(subscripts: Sequence[str], rest: Sequence[int]) -> list[tuple[int, ...]]:
    """Sets of the remaining factors that can form the kernel: all that carry a kernel axis, and
    any connected others."""
    windowed = [n for n in rest if any(k in subscripts[n] for k in KERNEL)]
    return _connected_sets(subscripts, rest, set(), windowed)


Einsum = tuple[list[str], str, list[tuple[int, ...]], list[str]]


@dataclass(frozen=True)
class _Stages:
    """The einsums of one (projection, kernel) choice and the convolution between them."""

    before: Einsum | None
    kernel: Einsum | None
    convolution: ContractionStep
    after: Einsum | None


def _needed(subscripts: Sequence[str], others: Sequence[int], *extra: str) -> set[str]:
    return set(OUTPUT).union(*(subscripts[n] for n in others), *extra)


def _stages(
    chosen: tuple[int, ...],
    kernel: tuple[int, ...],
    subscripts: Sequence[str],
    shapes: Sequence[Sequence[int]],
    names: Sequence[str],
    image: str,
    image_shape: Sequence[int],
    window: Window,
) -> _Stages:
    size = dict(zip(image, image_shape, strict=True))
    for term, shape in zip(subscripts, shapes, strict=True):
        size.update(zip(term, shape, strict=True))
    height, width = window.output_size(size["h"], size["w"])
    size["l"] = height * width
    size["p"], size["q"] = window.kernel
    rest = [n for n in range(len(subscripts)) if n not in chosen]
    before = None
    projected, label = image, "x"
    if chosen:
        needed = _needed(subscripts, rest)
        seen = dict.fromkeys(image[:-2] + "".join(subscripts[n] for n in chosen))
        projected = "".join(i for i in seen if i in needed) + SPATIAL
        before = (
            [image, *(subscripts[n] for n in chosen)],
            projected,
            [tuple(image_shape), *(tuple(shapes[n]) for n in chosen)],
            ["x", *(names[n] for n in chosen)],
        )
        label = "·".join(["x", *(names[n] for n in chosen)])
    others = [n for n in rest if n not in kernel]
    kernel_seen = dict.fromkeys("".join(subscripts[n] for n in kernel))
    kernel_subscripts = "".join(i for i in kernel_seen if i in _needed(subscripts, others, projected, KERNEL))
    kernel_einsum = None
    if len(kernel) > 1:
        kernel_einsum = (
            [subscripts[n] for n in kernel],
            kernel_subscripts,
            [tuple(shapes[n]) for n in kernel],
            [names[n] for n in kernel],
        )
    channels = projected[:-2]
    involved = dict.fromkeys(channels + kernel_subscripts + POSITIONS)
    result = "".join(i for i in involved if i in _needed(subscripts, others, POSITIONS) and i not in KERNEL)
    if not others:
        result = "".join(sorted(result, key=OUTPUT.index))
    kernel_name = "·".join(names[n] for n in kernel)
    step = ContractionStep(
        label,
        kernel_name,
        f"{channels + KERNEL + POSITIONS},{kernel_subscripts}->{result}",
        math.prod(size[i] for i in involved),
    )
    after = None
    if others:
        after = (
            [result, *(subscripts[n] for n in others)],
            OUTPUT,
            [tuple(size[i] for i in result), *(tuple(shapes[n]) for n in others)],
            [f"{label}⊛{kernel_name}", *(names[n] for n in others)],
        )
    return _Stages(before, kernel_einsum, step, after)


def _choices(
    subscripts: Sequence[str],
    names: Sequence[str],
    image: str,
    project: Sequence[str] | None,
    kernel: Sequence[str] | None,
) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    def indices(chosen: Sequence[str], what: str, windowed_ok: bool) -> tuple[int, ...]:
        unknown = [n for n in chosen if n not in names]
        windowed = [n for n in chosen if n in names and any(k in subscripts[names.index(n)] for k in KERNEL)]
        if unknown or (windowed and not windowed_ok):
            raise ValueError(
                f"plan_convolution: {what}={tuple(chosen)} must name factors among {tuple(names)}"
                + ("" if windowed_ok else " without a kernel axis")
                + f" (unknown: {unknown}, with a kernel axis: {windowed})"
            )
        return tuple(sorted(names.index(n) for n in chosen))

    projections = _projections(subscripts, names, image) if project is None else [indices(project, "project", False)]
    pairs = []
    for chosen in projections:
        rest = [n for n in range(len(subscripts)) if n not in chosen]
        if kernel is None:
            pairs += [(chosen, k) for k in _kernels(subscripts, rest)]
            continue
        forced = indices(kernel, "kernel", True)
        missing = [names[n] for n in rest if any(k in subscripts[n] for k in KERNEL) and n not in forced]
        if set(forced) & set(chosen) or missing:
            raise ValueError(
                f"plan_convolution: kernel={tuple(kernel)} must hold every factor with a kernel axis "
                f"(missing: {missing}) and none of project={tuple(names[n] for n in chosen)}"
            )
        pairs.append((chosen, forced))
    return pairs


@eager
def convolution_plans(
    subscripts: Sequence[str],
    shapes: Sequence[Sequence[int]],
    names: Sequence[str],
    image_shape: Sequence[int],
    window: Window,
    *,
    project: Sequence[str] | None = None,
    kernel: Sequence[str] | None = None,
    split_tasks: bool | None = None,
) -> list[ConvolutionPlan]:
    """Every (projection, kernel, execution) choice's plan, fewest multiply-adds first; arguments as
    :func:`plan_convolution`.

    A kernel that carries the task axis (``T > 1``) is listed twice, run as one convolution and
    split into one per task (``split_tasks``), at the same multiply-adds; the one convolution first.

    >>> window = Window((3, 3), padding=(1, 1, 1, 1))
    >>> plans = convolution_plans(["pqioK", "Kt"], [(3, 3, 16, 8, 2), (2, 4)], ["L", "S"], (8, 16, 10, 10), window)
    >>> [(p.kernel_factors, p.split_tasks, p.multiply_adds) for p in plans]
    [(('L',), False, 1894400), (('L', 'S'), False, 3695616), (('L', 'S'), True, 3695616)]
    >>> [p.kernel_carries_tasks for p in plans]  # L alone is the basis kernels, task-free
    [False, True, True]
    >>> [p.composes_first for p in plans]  # L alone leaves S for after the convolution
    [False, True, True]
    """
    image = "bihw" if len(image_shape) == 4 else "tbihw"
    if len(names) != len(subscripts) or len(shapes) != len(subscripts):
        raise ValueError(f"plan_convolution: {len(names)} names and {len(shapes)} shapes for {len(subscripts)} factors")
    if split_tasks is not None and not isinstance(split_tasks, bool):
        raise ValueError(f"plan_convolution: split_tasks must be None, True or False, got {split_tasks!r}")
    tasks = next(shape[term.index("t")] for term, shape in zip(subscripts, shapes, strict=True) if "t" in term)
    plans = []
    choices = _choices(subscripts, names, image, project, kernel)
    for chosen, kernel_set in choices:
        stages = _stages(chosen, kernel_set, subscripts, shapes, names, image, image_shape, window)
        before = None if stages.before is None else plan_contraction(*stages.before)
        composed = None if stages.kernel is None else plan_contraction(*stages.kernel)
        after = None if stages.after is None else plan_contraction(*stages.after)
        total = stages.convolution.multiply_adds + sum(p.multiply_adds for p in (before, composed, after) if p)
        splittable = _kernel_carries_tasks(stages.convolution)
        executions = {
            None: [False, True] if splittable and tasks > 1 else [False],
            False: [False],
            True: [True] if splittable else [],
        }[split_tasks]
        for split in executions:
            plans.append(
                ConvolutionPlan(
                    tuple(names[n] for n in chosen),
                    before,
                    tuple(names[n] for n in kernel_set),
                    composed,
                    stages.convolution,
                    after,
                    window,
                    total,
                    split_tasks=split,
                )
            )
    if not plans:
        kernels = sorted({tuple(names[n] for n in k) for _, k in choices})
        raise ValueError(
            f"plan_convolution: split_tasks=True needs a kernel that carries the task axis, and none of the "
            f"kernels {kernels} does (name the factor with the task axis in kernel=, or leave split_tasks None)"
        )
    # No projection with every factor in the kernel is always a choice; the sort is stable (ties: first
    # made), so without split_tasks=True the plan of fewest multiply-adds runs one convolution: the two
    # executions do the same arithmetic, and which is faster depends on the library's kernels for the
    # shape, which only a measurement (the timed trial) tells.
    return sorted(plans, key=lambda plan: plan.multiply_adds)


def plan_convolution(
    subscripts: Sequence[str],
    shapes: Sequence[Sequence[int]],
    names: Sequence[str],
    image_shape: Sequence[int],
    window: Window,
    *,
    project: Sequence[str] | None = None,
    kernel: Sequence[str] | None = None,
    split_tasks: bool | None = None,
) -> ConvolutionPlan:
    """The cheapest plan for a convolution whose kernel ``W[p, q, i, o, t]`` is the network ``subscripts``.

    ``image_shape`` is ``(B, C, H, W)`` (one batch for every task) or ``(T, B, C, H, W)``.
    ``project`` forces the factors contracted with the image first (``()``: none) and ``kernel``
    the factors composed into the convolution kernel (all that carry a kernel axis, plus any
    others); each ``None`` lets the planner choose. ``split_tasks=True`` forces the convolution to
    run as ``T`` convolutions, one per task (among the kernels that carry the task axis); ``None``
    and ``False`` run it as one.

    >>> window = Window((3, 3), padding=(1, 1, 1, 1))
    >>> plan = plan_convolution(["pqioK", "Kt"], [(3, 3, 16, 8, 2), (2, 4)], ["L", "S"], (8, 16, 10, 10), window)
    >>> plan.kernel_factors, plan.multiply_adds  # 2 basis kernels, then mixing; the 4 composed kernels: 3,695,616
    (('L',), 1894400)
    >>> split = plan_convolution(["pqioK", "Kt"], [(3, 3, 16, 8, 2), (2, 4)], ["L", "S"], (8, 16, 10, 10), window,
    ...                          split_tasks=True)
    >>> split.kernel_factors, split.split_tasks, split.multiply_adds  # the composed kernels, 4 convolutions
    (('L', 'S'), True, 3695616)
    """
    return convolution_plans(
        subscripts, shapes, names, image_shape, window, project=project, kernel=kernel, split_tasks=split_tasks
    )[0]


def best_convolution_multiply_adds(
    subscripts: Sequence[str],
    shapes: Sequence[Sequence[int]],
    image_shape: Sequence[int],
    window: Window,
) -> int:
    """Minimal multiply-adds over every projection, every kernel and every pairwise order of each einsum.

    The independent oracle for :func:`plan_convolution` (:func:`best_multiply_adds` per einsum).

    >>> window = Window((3, 3), padding=(1, 1, 1, 1))
    >>> best_convolution_multiply_adds(["pqioK", "Kt"], [(3, 3, 16, 8, 2), (2, 4)], (8, 16, 10, 10), window)
    1894400
    """
    image = "bihw" if len(image_shape) == 4 else "tbihw"
    names = [f"f{n}" for n in range(len(subscripts))]
    totals = []
    for chosen, kernel_set in _choices(subscripts, names, image, None, None):
        stages = _stages(chosen, kernel_set, subscripts, shapes, names, image, image_shape, window)
        total = stages.convolution.multiply_adds
        for einsum in (stages.before, stages.kernel, stages.after):
            if einsum is not None:
                total += best_multiply_adds(*einsum[:3])
        totals.append(total)
    return min(totals)
