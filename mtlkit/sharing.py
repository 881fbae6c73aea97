"""Sharing strength ρ of a factorised layer (DMTRL, Yang & Hospedales 2017, Sec. 4.3, Eq. 9).

Every DMTRL factorisation contains an "S-like" ``K × T`` matrix whose column ``t`` holds the
coefficients that build task ``t``'s weights: ``S`` for LAF, ``U_Nᵀ`` for Tucker and the last core
for TT (:meth:`mtlkit.nn.FactorizedLayer.task_factor`). Eq. 9 averages a column similarity over
all task pairs::

    ρ = 2 / (T (T − 1)) · Σ_{i<j} cos(S̃[:, i], S̃[:, j])

where ``S̃`` is ``S`` normalised column-wise. The paper fixes the scale of the two reference
sharing structures — single-task learning assigns ``S = I_T`` (ρ = 0, nothing shared) and hard
sharing assigns ``S = [1_{1×T}; 0]`` (ρ = 1, everything shared) — and normalises a *learned* ``S``
"to make a matched range with" them: absolute values (a large coefficient of either sign is a
strong one), then a per-column softmax so every column sums to 1.

Two normalisations are offered, and the difference matters for the ρ = 0 end:

* ``"softmax"`` (default, the paper's recipe): ``S̃[:, t] = softmax(|S[:, t]|)``. The exponential
  never produces zeros, so ``S = I_T`` maps to ``ρ = (T − 2 + 2e) / (T − 1 + e²)`` (0.65 for
  ``T = 2``), reaching 0 only in the limit ``S = c·I_T, c → ∞``. ``S = [1; 0]`` still gives ρ = 1.
* ``"abs"``: ``S̃[:, t] = |S[:, t]| / Σ_k |S[k, t]|``, the same "columns sum to 1, range [0, 1]"
  normalisation without the exponential. The two reference matrices are its fixed points, so it
  reproduces the paper's stated values exactly: ρ(I_T) = 0 and ρ([1; 0]) = 1. (Cosine similarity is
  scale invariant, so this is also plain Eq. 9 on ``|S|``.)

Use ``"softmax"`` to compare with the paper's Fig. 4, ``"abs"`` when ρ must read 0 for STL.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from mtlkit.nn._factorized_base import FactorizedLayer

__all__ = [
    "SharingNormalization",
    "sharing_strength_of_factor",
    "sharing_strength",
    "sharing_report",
    "softmax_identity_strength",
]

SharingNormalization = Literal["softmax", "abs"]


def sharing_strength_of_factor(task_factor: Tensor, normalization: SharingNormalization = "softmax") -> Tensor:
    """Eq. 9 on a ``K × T`` task factor: mean pairwise cosine similarity of normalised columns.

    Differentiable (a 0-dim tensor), so it can also serve as a regulariser.

    >>> sharing_strength_of_factor(torch.eye(3), "abs").item()
    0.0
    >>> sharing_strength_of_factor(torch.tensor([[1., 1., 1.], [0., 0., 0.]])).item()
    1.0
    """
    if task_factor.dim() != 2:
        raise ValueError(f"sharing strength needs a K × T task factor, got shape {tuple(task_factor.shape)}")
    tasks = task_factor.shape[1]
    if tasks < 2:
        raise ValueError(f"sharing strength needs ≥ 2 tasks (columns), got shape {tuple(task_factor.shape)}")
    magnitudes = task_factor.abs()
    if normalization == "softmax":
        columns = torch.softmax(magnitudes, dim=0)
    elif normalization == "abs":
        columns = magnitudes / magnitudes.sum(dim=0, keepdim=True).clamp_min(torch.finfo(magnitudes.dtype).tiny)
    else:
        raise ValueError(f"unknown normalization {normalization!r}; expected 'softmax' or 'abs'")
    unit = columns / torch.linalg.vector_norm(columns, dim=0, keepdim=True).clamp_min(torch.finfo(columns.dtype).tiny)
    similarity = unit.T @ unit  # (T, T) cosine similarities
    off_diagonal_sum = similarity.sum() - similarity.diagonal().sum()
    mean: torch.Tensor = off_diagonal_sum / (tasks * (tasks - 1))
    return mean  # = 2/(T(T-1)) Σ_{i<j}, similarity is symmetric


def sharing_strength(layer: FactorizedLayer, normalization: SharingNormalization = "softmax") -> float:
    """ρ of one factorised layer, from its S-like factor (:meth:`FactorizedLayer.task_factor`).

    >>> from mtlkit.factorized import LAF, Ranks
    >>> from mtlkit.nn import FactorizedLinear
    >>> _ = torch.manual_seed(0)
    >>> 0.0 <= sharing_strength(FactorizedLinear(4, 3, 5, LAF, Ranks(2))) <= 1.0
    True
    """
    with torch.no_grad():
        return float(sharing_strength_of_factor(layer.task_factor(), normalization))


def sharing_report(model: nn.Module, normalization: SharingNormalization = "softmax") -> dict[str, float]:
    """``{qualified layer name: ρ}`` for every factorised layer of ``model`` with ≥ 2 tasks.

    >>> from mtlkit.factorized import LAF, Ranks
    >>> from mtlkit.nn import FactorizedLinear
    >>> model = nn.Sequential(FactorizedLinear(4, 3, 2, LAF, Ranks(1)), nn.ReLU())
    >>> sharing_report(model, "abs")
    {'0': 1.0}
    """
    return {
        name: sharing_strength(module, normalization)
        for name, module in model.named_modules()
        if isinstance(module, FactorizedLayer) and module.num_tasks >= 2
    }


def softmax_identity_strength(num_tasks: int) -> float:
    """Closed form of the softmax-normalised ρ for ``S = I_T``: ``(T − 2 + 2e) / (T − 1 + e²)``.

    >>> round(softmax_identity_strength(2), 4)
    0.6481
    """
    return (num_tasks - 2 + 2 * math.e) / (num_tasks - 1 + math.e**2)
