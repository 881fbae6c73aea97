r"""A constant learning rate that decreases linearly over the last epochs of a run.

Belharbi et al. (2016) train with "a constant learning rate (0.01) which is decreased over the
last 500 epochs" of 5000. :func:`tail_linear_decay` gives that shape as a multiplicative factor for
:class:`torch.optim.lr_scheduler.LambdaLR`, which the :class:`~mtlkit.Trainer` steps once per epoch.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["tail_linear_decay"]


def tail_linear_decay(epochs: int, decay_epochs: int, final: float = 0.0) -> Callable[[int], float]:
    r"""Learning-rate factor: 1, then a linear ramp down over the last ``decay_epochs`` epochs.

    With :math:`E` = ``epochs``, :math:`D` = ``decay_epochs`` and :math:`f` = ``final``, the
    factor of epoch :math:`e = 0, \dots, E-1` is

    .. math::

        \eta(e) = 1 - (1 - f)\,\frac{\max(0,\ e - (E - D) + 1)}{D + 1}

    i.e. 1 until the decay starts, then :math:`D` equal steps down on the line that reaches
    :math:`f` at :math:`e = E`, just after the run — so no epoch is spent at a zero rate when
    :math:`f = 0`. Epochs past :math:`E` keep the factor :math:`f`.

    Args:
        epochs: length :math:`E > 0` of the run.
        decay_epochs: length :math:`0 \le D \le E` of the decay (``0``: constant rate).
        final: factor :math:`f \in [0, 1]` the ramp heads for.

    Returns:
        ``factor(epoch)``, for ``LambdaLR(optimizer, factor)``.

    Example:
        >>> factor = tail_linear_decay(epochs=10, decay_epochs=4)
        >>> [round(factor(e), 2) for e in range(10)]
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2]
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
        >>> scheduler = torch.optim.lr_scheduler.LambdaLR(opt, tail_linear_decay(5000, 500))
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be > 0, got {epochs}")
    if not 0 <= decay_epochs <= epochs:
        raise ValueError(f"decay_epochs must be in [0, epochs={epochs}], got {decay_epochs}")
    if not 0.0 <= final <= 1.0:
        raise ValueError(f"final factor must be in [0, 1], got {final}")
    start = epochs - decay_epochs

    def factor(epoch: int) -> float:
        if epoch >= epochs:
            return final
        done = max(0, epoch - start + 1)
        return 1.0 - (1.0 - final) * done / (decay_epochs + 1)

    return factor
