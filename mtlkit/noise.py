"""Input corruption for denoising autoencoders: a noise function :math:`f` maps a batch to a
corrupted copy of the same shape.

Each corruption is a pure function (``masking_noise``, ``gaussian_noise``) plus a small frozen
callable that remembers its parameter, so it can be passed around as ``noise=MaskingNoise(0.25)``.
Randomness comes from PyTorch's global generator (seeded by the caller) unless a
:class:`torch.Generator` is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

#: Anything that corrupts a batch: ``f(x)`` has the shape, dtype and device of ``x``.
NoiseFunction = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["GaussianNoise", "MaskingNoise", "NoiseFunction", "gaussian_noise", "masking_noise"]


def masking_noise(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Binomial masking: each entry is set to 0 independently with probability ``p``.

    .. math:: f(x)_i = m_i\, x_i, \qquad m_i \sim \text{Bernoulli}(1 - p)

    Unlike dropout the kept entries are *not* rescaled by :math:`1/(1-p)`: the denoising
    autoencoder must restore the missing entries, not an average (Vincent et al., 2010).
    The result is differentiable in ``x`` (masked entries get gradient 0).

    Args:
        x: batch to corrupt.
        p: masking probability in :math:`[0, 1]`.
        generator: random generator (on ``x``'s device); the global one if ``None``.

    Example:
        >>> import torch
        >>> rng = torch.Generator().manual_seed(0)
        >>> masked = masking_noise(torch.ones(10_000), p=0.25, generator=rng)
        >>> abs((masked == 0).float().mean().item() - 0.25) < 0.02  # a quarter of the entries
        True
    """
    _check_probability(p)
    keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)
    return x * keep


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Additive Gaussian noise of standard deviation ``std``.

    .. math:: f(x) = x + \epsilon, \qquad \epsilon \sim \mathcal N(0, s^2 I)

    Args:
        x: batch to corrupt (floating point).
        std: standard deviation :math:`s \ge 0`.
        generator: random generator (on ``x``'s device); the global one if ``None``.

    Example:
        >>> import torch
        >>> rng = torch.Generator().manual_seed(0)
        >>> noisy = gaussian_noise(torch.zeros(10_000), std=0.5, generator=rng)
        >>> abs(noisy.std().item() - 0.5) < 0.02
        True
    """
    if not (math.isfinite(std) and std >= 0):
        raise ValueError(f"Gaussian noise std must be finite and >= 0, got {std}")
    return x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


@dataclass(frozen=True)
class MaskingNoise:
    """:func:`masking_noise` with a fixed probability ``p``: ``MaskingNoise(0.25)(x)``.

    Example:
        >>> import torch
        >>> MaskingNoise(0.0)(torch.ones(3))
        tensor([1., 1., 1.])
    """

    p: float
    generator: torch.Generator | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_probability(self.p)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return masking_noise(x, self.p, self.generator)


@dataclass(frozen=True)
class GaussianNoise:
    """:func:`gaussian_noise` with a fixed standard deviation: ``GaussianNoise(0.1)(x)``.

    Example:
        >>> import torch
        >>> GaussianNoise(0.0)(torch.ones(2))
        tensor([1., 1.])
    """

    std: float
    generator: torch.Generator | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.std) and self.std >= 0):
            raise ValueError(f"Gaussian noise std must be finite and >= 0, got {self.std}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_noise(x, self.std, self.generator)


def _check_probability(p: float) -> None:
    if not (0.0 <= p <= 1.0):
        raise ValueError(f"masking probability p must be in [0, 1], got {p}")
