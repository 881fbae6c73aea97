"""Factorised task-stacked weights as types, rank rules as values, and contraction planning.

Every factorisation is a :class:`Factorization` (an ``nn.Module`` owning named factors) in its own
file: :class:`LAF`, :class:`Tucker`, :class:`TT` (DMTRL, Yang & Hospedales 2017) and :class:`CP`.
Rank rules (:class:`Ranks`, :class:`RelativeError`, :class:`SpectralError`,
:class:`ParameterBudget`, :class:`ProportionalBudget`) say how ranks are chosen; :func:`plan_contraction`
makes the multiply-add-optimal contraction order of a layer's input with its factors (opt_einsum), and
:func:`plan_convolution` the same for a convolution (optional projection first, one convolution).

>>> import torch
>>> w = Tucker.from_tensor(torch.randn(6, 5, 4, dtype=torch.float64), RelativeError(0.0))
>>> torch.allclose(w.compose(), w.compose().detach()), w.ranks
(True, (6, 5, 4))
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
