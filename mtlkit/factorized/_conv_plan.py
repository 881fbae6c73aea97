r"""Convolution plans: a factorised convolution as two planned contractions around one unfolding.

A convolution of an image ``x[b, i, h, w]`` with a kernel ``W[p, q, i, o]`` is a contraction of
the *unfolded* image ``X[b, i, p, q, l]`` (``l`` an output position; ``torch.nn.functional.unfold``)
with ``W`` over ``i, p, q``. For a factorised task-stacked kernel
``W[p, q, i, o, t] = network of factors`` the whole layer is therefore one einsum
``X[b, i, p, q, l] · factors → y[b, t, o, l]``, and every pairwise order of it — composing the
kernels first is one of them — has a cost in multiply-adds (the product of the sizes of all
indices a step touches; for a step with ``X`` that is exactly the cost of the convolution it runs).

Factors that carry neither kernel axis (``p``, ``q``) can also be contracted with the image
*before* it is unfolded, at ``H·W`` instead of ``kh·kw·L`` positions: Tucker's ``U_in`` (then
the rest is the Tucker-2 form of Kim et al. 2016: ``1×1`` in, core kernels, ``1×1`` out), CP's
input factor (then CP-as-separable-convolution: ``1×1`` in, a depthwise window, ``1×1`` out,
Lebedev et al. 2015), TT's input core. :func:`plan_convolution` plans both phases with
:func:`~mtlkit.factorized.plan_contraction` for every connected set of such factors (none
included) and keeps the cheapest total. No constant is fitted to any machine: the choice is by
multiply-adds alone.

Execution (:meth:`ConvolutionPlan.__call__`): a step that contracts the image over its window
(and channels) runs as one ``conv2d`` — grouped when an index is kept on both sides (the task
axis of per-task inputs, or a CP rank), ``1×1`` before the unfolding; a step that touches the
image otherwise unfolds it and runs as ``torch.einsum``, as does every step between factors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mtlkit.factorized._plan import ContractionPlan, best_multiply_adds, eager, plan_contraction

__all__ = ["ConvolutionPlan", "Window", "best_convolution_multiply_adds", "plan_convolution"]

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


def _conv_step(
    image: tuple[str, Tensor], other: tuple[str, Tensor], result: str, window: Window | None
) -> tuple[str, Tensor] | None:
    """``image · other → result`` as one ``conv2d``, or ``None`` when the step is not a convolution.

    ``image`` holds ``…hw``; ``window`` is the layer's (``other`` then holds ``p`` and ``q`` and
    both are contracted) or ``None`` for a ``1×1`` convolution (no kernel axis involved).
    """
    (xs, x), (ys, y) = image, other
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
    outer, groups, out = _ordered(outer, OUTPUT), _ordered(groups, OUTPUT), _ordered(out, OUTPUT)
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
        z = F.conv2d(x, y, None, window.stride, padding, window.dilation, prod(groups))
        shape, tail = (z.shape[-2] * z.shape[-1],), POSITIONS
    sizes = [size[i] for i in [*outer, *groups, *out]]
    return "".join([*outer, *groups, *out]) + tail, z.reshape(*sizes, *shape)


def _unfold(image: tuple[str, Tensor], window: Window) -> tuple[str, Tensor]:
    """``…hw`` → ``…pql``: every kernel window of the image (``torch.nn.functional.unfold``)."""
    xs, x = image
    leading = x.shape[:-2]
    flat = x.reshape(leading[0] if leading else 1, -1, *x.shape[-2:])
    flat, padding = window.symmetric(flat)
    unfolded = F.unfold(flat, window.kernel, window.dilation, padding, window.stride)
    return xs[:-2] + KERNEL + POSITIONS, unfolded.reshape(*leading, *window.kernel, -1)


def _run(
    plan: ContractionPlan, image: Tensor, image_subscripts: str, factors: Sequence[Tensor], window: Window | None
) -> tuple[str, Tensor]:
    """Execute ``plan`` on ``[image, *factors]``; ``image`` (``…hw``) stays an image until a step needs it unfolded."""
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
            done = _conv_step(spatial[0][:2], other[:2], result, window)
            if done is not None:
                live.append((*done, window is None))
                continue
        operands = [_unfold((s, t), window) if image and window is not None else (s, t) for s, t, image in taken]
        still_image = window is None and bool(spatial)
        equation = f"{','.join(s for s, _ in operands)}->{result}"
        live.append((result, torch.einsum(equation, *(t for _, t in operands)), still_image))
    ((subscripts, tensor, _),) = live
    return subscripts, tensor


@dataclass(frozen=True)
class ConvolutionPlan:
    """A factorised convolution's plan: factors folded into the image, the unfolding, the rest.

    ``project`` names the factors contracted with the image before it is unfolded (``()``: none)
    and ``before`` is that contraction's plan (``None`` without projection); ``after`` contracts
    the unfolded (projected) image with the remaining factors into ``y[b, t, o, l]``.
    ``multiply_adds`` is the total of both. Call it with the image and the factors (in
    :meth:`~mtlkit.factorized.Factorization.network` order) to run it.
    """

    project: tuple[str, ...]
    before: ContractionPlan | None
    after: ContractionPlan
    window: Window
    multiply_adds: int

    def __call__(self, images: Tensor, factors: Sequence[Tensor], names: Sequence[str]) -> Tensor:
        """``y[b, t, o, l]`` for ``images`` ``(B, C, H, W)`` (subscripts ``bihw``) or ``(T, B, C, H, W)``."""
        by_name = dict(zip(names, factors, strict=True))
        subscripts = "bihw" if images.dim() == 4 else "tbihw"
        if self.before is not None:
            subscripts, images = _run(
                self.before, images, subscripts, [by_name[n] for n in self.before.names[1:]], None
            )
        result, outputs = _run(self.after, images, subscripts, [by_name[n] for n in self.after.names[1:]], self.window)
        return outputs if result == OUTPUT else outputs.permute(*(result.index(i) for i in OUTPUT))

    @property
    def steps(self) -> tuple[str, ...]:
        """Every pairwise step, in order, as ``left · right: equation (multiply-adds)``."""
        plans = [p for p in (self.before, self.after) if p is not None]
        return tuple(f"{s.left} · {s.right}: {s.equation}  ({s.multiply_adds:,})" for p in plans for s in p.steps)

    def __str__(self) -> str:
        def indented(plan: ContractionPlan) -> str:
            return str(plan).replace("\n", "\n  ")

        what = (
            f"{', '.join(self.project)} contracted with the image before unfolding" if self.project else "no projection"
        )
        lines = [f"convolution ({self.multiply_adds:,} multiply-adds), {what}"]
        if self.before is not None:
            lines.append(f"  before unfolding: {indented(self.before)}")
        lines.append(f"  unfolded: {indented(self.after)}")
        return "\n".join(lines)


def _projections(subscripts: Sequence[str], names: Sequence[str], image: str) -> list[tuple[int, ...]]:
    """Sets of factors that may meet the image before unfolding: window-free, connected to the image."""
    free = [n for n, s in enumerate(subscripts) if not any(k in s for k in KERNEL)]
    found: list[tuple[int, ...]] = []

    def grow(chosen: tuple[int, ...], reach: set[str]) -> None:
        if chosen in found:
            return
        found.append(chosen)
        for n in free:
            if n not in chosen and reach & set(subscripts[n]):
                grow(tuple(sorted((*chosen, n))), reach | set(subscripts[n]))

    grow((), set(image) - set(SPATIAL))
    return sorted(found, key=lambda c: (len(c), c))


@dataclass(frozen=True)
class _Phases:
    """The two einsums of one projection choice: subscripts and shapes of each phase."""

    before: tuple[list[str], str, list[tuple[int, ...]], list[str]] | None
    after: tuple[list[str], str, list[tuple[int, ...]], list[str]]


def _phases(
    chosen: tuple[int, ...],
    subscripts: Sequence[str],
    shapes: Sequence[Sequence[int]],
    names: Sequence[str],
    image: str,
    image_shape: Sequence[int],
    window: Window,
) -> _Phases:
    size = dict(zip(image, image_shape, strict=True))
    for term, shape in zip(subscripts, shapes, strict=True):
        size.update(zip(term, shape, strict=True))
    rest = [n for n in range(len(subscripts)) if n not in chosen]
    before = None
    projected = image
    if chosen:
        needed = set(OUTPUT).union(*(subscripts[n] for n in rest))
        seen = dict.fromkeys(image[:-2] + "".join(subscripts[n] for n in chosen))
        projected = "".join(i for i in seen if i in needed) + SPATIAL
        before = (
            [image, *(subscripts[n] for n in chosen)],
            projected,
            [tuple(image_shape), *(tuple(shapes[n]) for n in chosen)],
            ["x", *(names[n] for n in chosen)],
        )
    height, width = window.output_size(size["h"], size["w"])
    unfolded = projected[:-2] + KERNEL + POSITIONS
    unfolded_shape = (*(size[i] for i in projected[:-2]), *window.kernel, height * width)
    label = "x" if not chosen else "·".join(["x", *(names[n] for n in chosen)])
    after = (
        [unfolded, *(subscripts[n] for n in rest)],
        OUTPUT,
        [unfolded_shape, *(tuple(shapes[n]) for n in rest)],
        [label, *(names[n] for n in rest)],
    )
    return _Phases(before, after)


@eager
def plan_convolution(
    subscripts: Sequence[str],
    shapes: Sequence[Sequence[int]],
    names: Sequence[str],
    image_shape: Sequence[int],
    window: Window,
    *,
    project: Sequence[str] | None = None,
    path: Sequence[Sequence[int]] | None = None,
) -> ConvolutionPlan:
    """The cheapest plan for a convolution whose kernel ``W[p, q, i, o, t]`` is the network ``subscripts``.

    ``image_shape`` is ``(B, C, H, W)`` (one batch for every task) or ``(T, B, C, H, W)``.
    ``project`` forces the factors contracted before unfolding (``()``: none) and ``path`` the
    order after it (opt_einsum's format; operands: the unfolded image, then the remaining factors
    in network order); with ``path`` and no ``project``, nothing is projected.

    >>> window = Window((3, 3), padding=(1, 1, 1, 1))
    >>> plan = plan_convolution(["pqioK", "Kt"], [(3, 3, 16, 8, 2), (2, 4)], ["L", "S"], (8, 16, 10, 10), window)
    >>> plan.project, plan.multiply_adds  # 2 basis kernels, then mixing; the 4 composed kernels: 3,695,616
    ((), 1894400)
    """
    image = "bihw" if len(image_shape) == 4 else "tbihw"
    if len(names) != len(subscripts) or len(shapes) != len(subscripts):
        raise ValueError(f"plan_convolution: {len(names)} names and {len(shapes)} shapes for {len(subscripts)} factors")
    if project is None and path is not None:
        project = ()
    if project is None:
        choices = _projections(subscripts, names, image)
    else:
        unknown = [n for n in project if n not in names]
        windowed = [n for n in project if n in names and any(k in subscripts[names.index(n)] for k in KERNEL)]
        if unknown or windowed:
            raise ValueError(
                f"plan_convolution: project={tuple(project)} must name factors without a kernel axis "
                f"among {tuple(names)} (unknown: {unknown}, with a kernel axis: {windowed})"
            )
        choices = [tuple(sorted(names.index(n) for n in project))]
    best: ConvolutionPlan | None = None
    for chosen in choices:
        phases = _phases(chosen, subscripts, shapes, names, image, image_shape, window)
        before = None if phases.before is None else plan_contraction(*phases.before)
        after = plan_contraction(*phases.after, path=path)
        total = after.multiply_adds + (0 if before is None else before.multiply_adds)
        if best is None or total < best.multiply_adds:
            best = ConvolutionPlan(tuple(names[n] for n in chosen), before, after, window, total)
    assert best is not None  # the empty projection is always a choice
    return best


def best_convolution_multiply_adds(
    subscripts: Sequence[str],
    shapes: Sequence[Sequence[int]],
    image_shape: Sequence[int],
    window: Window,
) -> int:
    """Minimal multiply-adds over every projection and every pairwise order of both phases.

    The independent oracle for :func:`plan_convolution` (:func:`best_multiply_adds` per phase).

    >>> window = Window((3, 3), padding=(1, 1, 1, 1))
    >>> best_convolution_multiply_adds(["pqioK", "Kt"], [(3, 3, 16, 8, 2), (2, 4)], (8, 16, 10, 10), window)
    1894400
    """
    image = "bihw" if len(image_shape) == 4 else "tbihw"
    names = [f"f{n}" for n in range(len(subscripts))]
    totals = []
    for chosen in _projections(subscripts, names, image):
        phases = _phases(chosen, subscripts, shapes, names, image, image_shape, window)
        total = best_multiply_adds(*phases.after[:3])
        if phases.before is not None:
            total += best_multiply_adds(*phases.before[:3])
        totals.append(total)
    return min(totals)
