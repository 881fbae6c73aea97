"""Corruption functions of the denoising autoencoders."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlkit.noise import GaussianNoise, MaskingNoise, gaussian_noise, masking_noise

N = 100_000  # entries per statistical test: tolerances below shrink as 1/sqrt(N)


@settings(max_examples=15, deadline=None)
@given(p=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_masking_zeroes_the_expected_fraction(p: float, seed: int) -> None:
    x = torch.rand(N) + 0.5  # no zeros before masking
    masked = masking_noise(x, p, generator=torch.Generator().manual_seed(seed))
    zeroed = (masked == 0).float().mean().item()
    # The number of zeros is Binomial(N, p): 6 standard deviations, i.e. a false alarm
    # about once in 5e8 runs; plus a hair for p in {0, 1} where the std is 0.
    tolerance = 6 * math.sqrt(p * (1 - p) / N) + 1e-12
    assert abs(zeroed - p) <= tolerance
    kept = masked != 0
    assert torch.equal(masked[kept], x[kept])  # no rescaling of the kept entries


def test_masking_extremes_are_exact() -> None:
    x = torch.rand(3, 5) + 0.5
    assert torch.equal(masking_noise(x, 0.0), x)
    assert torch.equal(masking_noise(x, 1.0), torch.zeros_like(x))


def test_masking_is_differentiable_and_blocks_masked_entries() -> None:
    x = torch.rand(1000, requires_grad=True)
    masked = masking_noise(x, 0.5, generator=torch.Generator().manual_seed(0))
    masked.sum().backward()
    assert torch.equal(x.grad, (masked != 0).float())


def test_gaussian_noise_has_the_requested_moments() -> None:
    std = 0.3
    x = torch.full((N,), 2.0, dtype=torch.float64)
    noise = gaussian_noise(x, std, generator=torch.Generator().manual_seed(1)) - x
    # Sample mean ~ N(0, std^2/N); sample std ~ std * (1 +- sqrt(1/(2N))): 6 sigmas each.
    assert abs(noise.mean().item()) <= 6 * std / math.sqrt(N)
    assert abs(noise.std().item() - std) <= 6 * std / math.sqrt(2 * N)


def test_noise_objects_call_the_functions_with_their_generator() -> None:
    x = torch.rand(4, 7)
    torch.testing.assert_close(
        MaskingNoise(0.4, generator=torch.Generator().manual_seed(3))(x),
        masking_noise(x, 0.4, generator=torch.Generator().manual_seed(3)),
    )
    torch.testing.assert_close(
        GaussianNoise(0.2, generator=torch.Generator().manual_seed(3))(x),
        gaussian_noise(x, 0.2, generator=torch.Generator().manual_seed(3)),
    )
    assert MaskingNoise(0.4) == MaskingNoise(0.4)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MaskingNoise(1.5), r"p must be in \[0, 1\]"),
        (lambda: masking_noise(torch.ones(2), -0.1), r"p must be in \[0, 1\]"),
        (lambda: GaussianNoise(-1.0), "std must be finite and >= 0"),
        (lambda: gaussian_noise(torch.ones(2), float("nan")), "std must be finite and >= 0"),
    ],
)
def test_clear_errors(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
