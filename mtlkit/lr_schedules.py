"""Per-epoch learning-rate schedules that papers describe in words.

* :func:`staged_time_decay` — the pooled-MNIST seed's stages with per-epoch time decay.
* :func:`tail_linear_decay` — the evolving-weights paper's "constant learning rate (0.01) which is
  decreased over the last 500 epochs" of 5000, as a factor for
  :class:`torch.optim.lr_scheduler.LambdaLR` (the :class:`~mtlkit.Trainer` steps it once per epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["staged_time_decay", "staged_time_decay_lr", "tail_linear_decay"]


def staged_time_decay_lr(epoch: int, stages: Sequence[tuple[float, int]]) -> float:
    r"""Learning rate of 0-based ``epoch`` under :func:`staged_time_decay`.

    In stage :math:`s` (initial rate :math:`\eta_s`, :math:`E_s` epochs), at epoch :math:`n`
    counted from the start of the stage,

    .. math:: \eta = \frac{\eta_s}{1 + d_s\, n}, \qquad d_s = \eta_s / E_s,

    the time-based decay of the pooled-MNIST seed ("the decay rate is 1/(1+dn) where d is the
    learning rate set in the begin divided by 25"). After the last stage the rate stays at that
    stage's last value.

    >>> [f"{staged_time_decay_lr(e, [(1e-3, 2), (1e-5, 2)]):.4g}" for e in range(4)]
    ['0.001', '0.0009995', '1e-05', '1e-05']
    """
    if not stages:
        raise ValueError("need at least one (learning_rate, epochs) stage")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    start = 0
    for s, (lr, length) in enumerate(stages):
        if lr <= 0 or length < 1:
            raise ValueError(f"stage {s} must have a positive rate and at least one epoch, got {(lr, length)}")
        if epoch < start + length or s == len(stages) - 1:
            n = min(epoch - start, length - 1)
            return lr / (1.0 + (lr / length) * n)
        start += length
    raise AssertionError("unreachable")


def staged_time_decay(
    optimizer: torch.optim.Optimizer, stages: Sequence[tuple[float, int]]
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-epoch scheduler following :func:`staged_time_decay_lr`; pass it to the Trainer.

    The optimizer's own learning rate is overridden from the first epoch on.

    >>> opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched = staged_time_decay(opt, [(1e-3, 25), (1e-5, 25)])
    >>> rates = []
    >>> for _ in range(50):
    ...     rates.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    >>> f"{rates[0]:.3g} {rates[24]:.6g} {rates[25]:.3g}"
    '0.001 0.000999041 1e-05'
    """
    stages = [(float(lr), int(n)) for lr, n in stages]
    staged_time_decay_lr(0, stages)  # validate now, not at the first step
    base = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: staged_time_decay_lr(epoch, stages) / base)


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
