"""Shared machinery of the DMTRL factorised layers: factor storage, composition and its cache."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mtlkit.decomp import decompose, random_factors
from mtlkit.factorization import (
    FACTORIZATION_METHODS,
    FactorizationMethod,
    check_tt_ranks,
    check_tucker_ranks,
    compose,
    laf_max_rank,
    tt_feasible_ranks,
)

Ranks = int | Sequence[int]


class FactorizedLayer(nn.Module):
    """Base of layers whose task-stacked weight ``W`` (task axis last) is composed from factors.

    Subclasses fix the weight axis order and the kernel; this base stores the factors as
    parameters (``factors``: LAF ``[L, S]``, Tucker ``[G, U_1..U_N]``, TT ``[G_1..G_N]``), the
    per-task biases ``bias`` of shape ``(out, T)`` (never shared, as in the paper), and composes
    ``W`` once per call. In eval mode without autograd the composed weights are cached; the cache
    key is every factor's storage pointer and ``_version`` counter, so any in-place update
    (optimizer step, ``load_state_dict``, ``.to()``) and ``train()`` invalidate it.
    """

    factors: nn.ParameterList

    def __init__(
        self,
        weight_shape: Sequence[int],
        fan_in: int,
        method: FactorizationMethod,
        ranks: Ranks | None,
        eps: float,
        bias: bool,
    ) -> None:
        super().__init__()
        if method not in FACTORIZATION_METHODS:
            raise ValueError(
                f"{type(self).__name__}: unknown method {method!r}; "
                f"expected one of {FACTORIZATION_METHODS}"
            )
        self.method: FactorizationMethod = method
        self.weight_shape: tuple[int, ...] = tuple(int(d) for d in weight_shape)
        ranks = self._resolve_ranks(ranks)
        initial = random_factors(
            method,
            self.weight_shape,
            fan_in,
            ranks=ranks,
            eps=None if ranks is not None else eps,
            dtype=torch.get_default_dtype(),
        )
        self.factors = nn.ParameterList(nn.Parameter(f) for f in initial)
        out_features, num_tasks = self.weight_shape[-2], self.weight_shape[-1]
        if bias:
            bound = fan_in**-0.5
            self.bias: nn.Parameter | None = nn.Parameter(
                torch.empty(out_features, num_tasks).uniform_(-bound, bound)
            )
        else:
            self.register_parameter("bias", None)
        self._cache: tuple[tuple[tuple[int, int], ...], Tensor, Tensor] | None = None

    # --------------------------------------------------------------------------- construction

    def _resolve_ranks(self, ranks: Ranks | None) -> int | tuple[int, ...] | None:
        """Concrete ranks for ``weight_shape``, failing early with the layer's name and shape.

        An ``int`` is a cap applied to every mode (LAF ``min(K, max)``, Tucker ``min(K, D_n)``,
        TT the largest chain-consistent ranks ``≤ K``); a sequence must be valid as given.
        """
        if ranks is None:
            return None
        what = f"{type(self).__name__}({self.method}, weight shape {self.weight_shape})"
        if isinstance(ranks, bool) or (isinstance(ranks, int) and ranks < 1):
            raise ValueError(f"{what}: rank must be a positive integer, got {ranks!r}")
        if self.method == "laf":
            if not isinstance(ranks, int):
                raise ValueError(f"{what}: LAF takes a single integer rank K, got {ranks!r}")
            return min(ranks, laf_max_rank(self.weight_shape))
        if isinstance(ranks, int):
            if self.method == "tucker":
                return tuple(min(ranks, d) for d in self.weight_shape)
            return tt_feasible_ranks(self.weight_shape, ranks)
        check = check_tucker_ranks if self.method == "tucker" else check_tt_ranks
        return check(self.weight_shape, tuple(ranks), what)

    def _load_task_weights(
        self, weights: Tensor, biases: Tensor | None, eps: float | None, ranks: Ranks | None
    ) -> None:
        """Replace factors by a decomposition of task-stacked dense ``weights`` (``from_dense``)."""
        if tuple(weights.shape) != self.weight_shape:
            raise ValueError(
                f"{type(self).__name__}: stacked weights have shape {tuple(weights.shape)}, "
                f"expected {self.weight_shape}"
            )
        ranks = self._resolve_ranks(ranks)
        new = decompose(
            self.method, weights.detach(), eps=eps if ranks is None else None, ranks=ranks
        )
        self.factors = nn.ParameterList(nn.Parameter(f.to(weights.dtype)) for f in new)
        if biases is not None and self.bias is not None:
            with torch.no_grad():
                self.bias.copy_(biases)
        self._cache = None

    # ------------------------------------------------------------------------------ weights

    @property
    def num_tasks(self) -> int:
        return self.weight_shape[-1]

    @property
    def ranks(self) -> int | tuple[int, ...]:
        """Current ranks: LAF ``K``; Tucker ``(K_1..K_N)``; TT inner ``(K_1..K_{N-1})``."""
        if self.method == "laf":
            return int(self.factors[1].shape[0])
        if self.method == "tucker":
            return tuple(int(k) for k in self.factors[0].shape)
        return tuple(int(core.shape[2]) for core in self.factors[:-1])

    def task_factor(self) -> Tensor:
        """The ``K × T`` "S-like" task-specific factor (paper Sec. 4.3, used by sharing strength).

        LAF: ``S``; Tucker: ``U_Nᵀ``; TT: the last core ``G_N[:, :, 0]``.
        """
        if self.method == "laf":
            return self.factors[1]
        if self.method == "tucker":
            return self.factors[-1].T
        return self.factors[-1][:, :, 0]

    def _kernel_weight(self, weights: Tensor) -> Tensor:
        """Turn task-last ``W`` into the layout the batched kernel consumes (subclass hook)."""
        raise NotImplementedError

    def _compose_both(self) -> tuple[Tensor, Tensor]:
        weights = compose(self.method, list(self.factors))
        return weights, self._kernel_weight(weights)

    def _composed(self) -> tuple[Tensor, Tensor]:
        needs_graph = torch.is_grad_enabled() and any(p.requires_grad for p in self.factors)
        if self.training or needs_graph:
            # A cached, detached weight would silently cut gradients: only cache pure inference.
            return self._compose_both()
        key = tuple((p.data_ptr(), p._version) for p in self.factors)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, *self._compose_both())
        return self._cache[1], self._cache[2]

    def task_weights(self) -> Tensor:
        """Composed task-stacked weight ``W``, task axis last (axis order: see the subclass)."""
        return self._composed()[0]

    def train(self, mode: bool = True) -> FactorizedLayer:
        self._cache = None
        return super().train(mode)

    def parameter_count(self) -> int:
        """Learnable parameters of this layer: factors plus per-task biases."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return (
            f"method={self.method!r}, weight_shape={self.weight_shape}, ranks={self.ranks}, "
            f"bias={self.bias is not None}"
        )
