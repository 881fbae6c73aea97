r"""Contraction plans: the order in which a layer contracts its input with its factors.

A factorised layer's output is one einsum of the input and the factor network, e.g. a Tucker
linear layer on a shared batch, ``y[t,b,o] = Σ x[b,i] U_0[i,A] U_1[o,B] U_2[t,C] G[A,B,C]``. The
same value comes out of every order of pairwise contractions — composing the weights first is one
of them — but their cost differs by orders of magnitude. :func:`plan_contraction` asks opt_einsum's
exhaustive ``"optimal"`` search for the cheapest order (no constants fitted to any machine) and
counts the multiply-adds of each pairwise step as the product of the sizes of every index the two
operands carry (``m·k·n`` for an ``(m, k) @ (k, n)`` product).

:func:`best_multiply_adds` is an independent check of that choice: a dynamic programme over
subsets that finds the minimal multiply-add count under exactly this cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar, cast

import opt_einsum
import torch
from opt_einsum.paths import DynamicProgramming
from torch import Tensor

__all__ = ["ContractionStep", "ContractionPlan", "plan_contraction", "best_multiply_adds"]


@dataclass(frozen=True)
class ContractionStep:
    """One pairwise contraction: ``equation`` on the operands named ``left`` and ``right``."""

    left: str
    right: str
    equation: str
    multiply_adds: int


@dataclass(frozen=True)
class ContractionPlan:
    """A contraction order of named operands, with its cost; call it with the operands to run it.

    ``path`` is in opt_einsum's format (positions in the shrinking operand list, the result
    appended at the end), so it can be passed back as an override.
    """

    equation: str
    names: tuple[str, ...]
    path: tuple[tuple[int, ...], ...]
    steps: tuple[ContractionStep, ...]
    multiply_adds: int

    def __call__(self, operands: Sequence[Tensor]) -> Tensor:
        inputs, output = self.equation.split("->")
        live = list(zip(inputs.split(","), operands, strict=True))
        for step, positions in zip(self.steps, self.path, strict=True):
            taken = [live[p] for p in positions]
            for p in sorted(positions, reverse=True):
                del live[p]
            result_subscripts = step.equation.split("->")[1]
            result = torch.einsum(step.equation, *(t for _, t in taken))
            live.append((result_subscripts, result))
        ((subscripts, result),) = live
        return result if subscripts == output else torch.einsum(f"{subscripts}->{output}", result)

    def __str__(self) -> str:
        lines = [f"{self.equation}  ({self.multiply_adds:,} multiply-adds)"]
        lines += [f"  {s.left} · {s.right}: {s.equation}  ({s.multiply_adds:,})" for s in self.steps]
        return "\n".join(lines)


def _sizes(subscripts: Sequence[str], shapes: Sequence[Sequence[int]]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for term, shape in zip(subscripts, shapes, strict=True):
        if len(term) != len(shape):
            raise ValueError(f"plan_contraction: subscripts {term!r} do not match operand shape {tuple(shape)}")
        for index, size in zip(term, shape, strict=True):
            if sizes.setdefault(index, int(size)) != int(size):
                raise ValueError(f"plan_contraction: index {index!r} has sizes {sizes[index]} and {size}")
    return sizes


def _result_subscripts(taken: Sequence[str], rest: Sequence[str], output: str, leading: str) -> str:
    """Indices of a pairwise result: those still needed by another operand or by the output.

    Their order is the result's memory layout: the ``leading`` indices first (in that order), the
    others as they appear in the operands; the final result comes out in the output's order.
    """
    needed = set(output).union(*rest) if rest else set(output)
    seen = "".join(dict.fromkeys("".join(taken)))
    kept = [i for i in seen if i in needed]
    if not rest:
        kept.sort(key=output.index)
    else:  # a stable sort: the non-leading indices keep their order
        kept.sort(key=lambda i: leading.index(i) if i in leading else len(leading))
    return "".join(kept)


_Function = TypeVar("_Function", bound=Callable[..., object])


def eager(function: _Function) -> _Function:
    """``function`` run eagerly under ``torch.compile``: planning is a Python search over orders,
    done once per shape, and tracing opt_einsum through it takes minutes."""
    return cast("_Function", torch.compiler.disable(function))


@eager
def plan_contraction(
    subscripts: Sequence[str],
    output: str,
    shapes: Sequence[Sequence[int]],
    names: Sequence[str],
    *,
    path: Sequence[Sequence[int]] | None = None,
    leading: str = "",
) -> ContractionPlan:
    """The cheapest pairwise order for ``einsum(subscripts → output)`` on operands of ``shapes``.

    ``path`` overrides the planner (opt_einsum's path format); it is validated and costed the same.
    ``leading``: output indices that every intermediate result lists first, in this order (the
    others keep their order of appearance; the final result is in the output's order). It changes
    the layout, never the order or the cost. ``torch.einsum`` stores a pairwise result in the order
    asked for where that order is the indices of both operands, then one operand's, then the
    other's (elsewhere it returns a permuted view), and two CPU costs follow from the layout:
    ``torch.bmm`` copies every matrix of a batch whose batch axis is not outermost in memory, and
    a factor's gradient comes out in the layout of the product that used it, so it is copied into
    the factor's layout when the two differ. A linear layer passes its batch axes,
    ``leading="tb"``: TT's ``G1·G2`` product is then stored task-major (``tAo``), so the per-task
    product with ``x·G0`` runs on contiguous matrices (``G1``'s gradient is the one transposed copy
    left); Tucker's core step ``bA,ABC`` is stored ``bBC``, a plain ``(b, A) @ (A, B·C)`` whose core
    gradient needs no copy. The measured effect is in docs/factorized.rst (issue #20's grid).

    >>> plan_contraction(["bi", "iA", "At"], "tb", [(8, 4), (4, 3), (3, 2)], ["x", "L", "S"],
    ...                  path=[(1, 2), (0, 1)], leading="t").steps[0].equation
    'iA,At->ti'
    >>> plan = plan_contraction(["bi", "iK", "Kt"], "tb", [(64, 784), (784, 3), (3, 10)], ["x", "L", "S"])
    >>> [(s.left, s.right) for s in plan.steps], plan.multiply_adds
    ([('x', 'L'), ('S', 'x·L')], 152448)
    """
    if len(names) != len(subscripts):
        raise ValueError(f"plan_contraction: {len(names)} names for {len(subscripts)} operands")
    sizes = _sizes(subscripts, shapes)
    if not set(leading) <= set(output) or len(set(leading)) != len(leading):
        raise ValueError(f"plan_contraction: leading={leading!r} must be distinct indices of the output {output!r}")
    equation = f"{','.join(subscripts)}->{output}"
    if path is None:
        if len(subscripts) == 1:
            return plan_contraction(subscripts, output, shapes, names, path=[(0,)], leading=leading)
        # opt_einsum's searches minimise its own FLOP model, which ties orders that differ in
        # multiply-adds when axes have size 1; cost each search's order in multiply-adds, keep the least.
        candidates = {
            tuple(tuple(step) for step in opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=how)[0])
            for how in ("optimal", "branch-all", DynamicProgramming(minimize="flops", search_outer=True))
        }
        plans = [
            plan_contraction(subscripts, output, shapes, names, path=c, leading=leading) for c in sorted(candidates)
        ]
        return min(plans, key=lambda plan: plan.multiply_adds)
    chosen = [tuple(int(p) for p in step) for step in path]
    try:  # opt_einsum checks an explicit path (positions in range, one result at the end)
        opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=chosen)
    except (IndexError, ValueError, TypeError) as error:
        raise ValueError(f"plan_contraction: path {chosen} is not a valid path for {equation}: {error}") from None
    live = [(term, name) for term, name in zip(subscripts, names, strict=True)]
    steps = []
    for positions in chosen:
        taken = [live[p] for p in positions]
        for p in sorted(positions, reverse=True):
            del live[p]
        result = _result_subscripts([t for t, _ in taken], [t for t, _ in live], output, leading)
        involved = set("".join(t for t, _ in taken))
        cost = math.prod(sizes[i] for i in involved)
        left = taken[0][1]
        right = taken[1][1] if len(taken) > 1 else ""
        steps.append(ContractionStep(left, right, f"{','.join(t for t, _ in taken)}->{result}", cost))
        live.append((result, "·".join(n for _, n in taken)))
    if len(live) != 1:
        raise ValueError(f"plan_contraction: path {chosen} leaves {len(live)} operands uncontracted")
    return ContractionPlan(
        equation, tuple(names), tuple(tuple(p) for p in chosen), tuple(steps), sum(s.multiply_adds for s in steps)
    )


def best_multiply_adds(subscripts: Sequence[str], output: str, shapes: Sequence[Sequence[int]]) -> int:
    """Minimal multiply-adds over *all* pairwise orders (dynamic programme over operand subsets).

    The independent oracle for :func:`plan_contraction` (same cost model, different search).

    >>> best_multiply_adds(["bi", "iK", "Kt"], "tb", [(64, 784), (784, 3), (3, 10)])
    152448
    """
    sizes: Mapping[str, int] = _sizes(subscripts, shapes)
    count = len(subscripts)
    everything = (1 << count) - 1

    def indices(subset: int) -> set[str]:
        return set().union(*(set(subscripts[i]) for i in range(count) if subset >> i & 1))

    def result(subset: int) -> set[str]:
        outside = indices(everything & ~subset) | set(output)
        return indices(subset) & outside

    @cache
    def best(subset: int) -> int:
        if subset & (subset - 1) == 0:
            return 0
        cheapest = math.inf
        part = (subset - 1) & subset
        while part:
            other = subset & ~part
            if part < other:  # each split once
                step = math.prod(sizes[i] for i in result(part) | result(other))
                cheapest = min(cheapest, best(part) + best(other) + step)
            part = (part - 1) & subset
        return int(cheapest)

    return best(everything)
