"""Activation functions by name, so layer specs can stay plain data."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ActivationSpec = str | Callable[[], nn.Module] | None

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def make_activation(spec: ActivationSpec) -> nn.Module:
    """A fresh activation module from a name (``"relu"``, ``"tanh"``, …), a factory, or ``None``.

    ``None`` gives :class:`torch.nn.Identity`, so "no activation" needs no special case.

    Example:
        >>> make_activation("tanh")
        Tanh()
    """
    if spec is None:
        return nn.Identity()
    if isinstance(spec, str):
        try:
            return _ACTIVATIONS[spec]()
        except KeyError:
            raise ValueError(
                f"unknown activation {spec!r}; choose one of {sorted(_ACTIVATIONS)} or pass a factory"
            ) from None
    module = spec()
    if not isinstance(module, nn.Module):
        raise TypeError(f"activation factory {spec!r} returned {type(module).__name__}, not nn.Module")
    return module
