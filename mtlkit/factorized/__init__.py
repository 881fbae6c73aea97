"""Factorised task-stacked weights as types, rank rules as values, and contraction planning.

Every factorisation is a :class:`Factorization` (an ``nn.Module`` owning named factors) in its own
file: :class:`LAF`, :class:`Tucker`, :class:`TT` (DMTRL, Yang & Hospedales 2017) and :class:`CP`.
Rank rules (:class:`Ranks`, :class:`RelativeError`, :class:`SpectralError`,
:class:`ParameterBudget`, :class:`ProportionalBudget`) say how ranks are chosen; :func:`plan_contraction`
makes the multiply-add-optimal contraction order of a layer's input with its factors (opt_einsum), and
:func:`plan_convolution` the same for a convolution (optional projection first, one convolution).

>>> import torch
>>> W = torch.randn(6, 5, 4, dtype=torch.float64)
>>> exact = Tucker.from_tensor(W, RelativeError(0.0))  # ε = 0: full ranks, W itself
>>> torch.allclose(exact.compose(), W), exact.ranks
(True, (6, 5, 4))
>>> small = Tucker.from_tensor(W, Ranks(2, 2, 2))
>>> bool(torch.linalg.norm(small.compose() - W) < torch.linalg.norm(W)), small.ranks
(True, (2, 2, 2))
"""

from mtlkit.factorized._base import Factorization
from mtlkit.factorized._conv_plan import ConvolutionPlan, Window, best_convolution_multiply_adds, plan_convolution
from mtlkit.factorized._cp import CP
from mtlkit.factorized._laf import LAF
from mtlkit.factorized._plan import ContractionPlan, ContractionStep, best_multiply_adds, plan_contraction
from mtlkit.factorized._rules import (
    ParameterBudget,
    ProportionalBudget,
    RankRule,
    Ranks,
    RelativeError,
    SpectralError,
)
from mtlkit.factorized._tt import TT
from mtlkit.factorized._tucker import Tucker

__all__ = [
    "CP",
    "LAF",
    "TT",
    "ContractionPlan",
    "ContractionStep",
    "ConvolutionPlan",
    "Factorization",
    "ParameterBudget",
    "ProportionalBudget",
    "RankRule",
    "Ranks",
    "RelativeError",
    "SpectralError",
    "Tucker",
    "Window",
    "best_convolution_multiply_adds",
    "best_multiply_adds",
    "plan_contraction",
    "plan_convolution",
]
