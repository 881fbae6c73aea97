"""The shared parameters a gradient-based weighting needs, taken from a model once."""

from __future__ import annotations

from torch import nn

from mtlkit.nn._module import MultiTaskModule


def shared_modules_of(model: nn.Module, method: str) -> list[nn.Module]:
    """``model.shared_modules()``; ``ValueError`` naming ``method`` when there are none."""
    if not isinstance(model, MultiTaskModule):
        raise TypeError(
            f"{method} needs a MultiTaskModule (it reads shared_modules()), got model of type {type(model).__name__}"
        )
    modules = [m for m in model.shared_modules() if any(p.requires_grad for p in m.parameters())]
    if not modules:
        raise ValueError(
            f"{method} balances gradients of shared parameters, but the model has none "
            f"({type(model).__name__}.shared_modules() is empty: per-task trunks, or a frozen trunk?)"
        )
    return modules


def split_parameters(model: nn.Module, method: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The trainable parameters of ``model`` as (shared, task-specific), each once, in model order.

    Shared are those of :func:`shared_modules_of` (``ValueError`` naming ``method`` when there are
    none); every other trainable parameter is task-specific.
    """
    seen: set[int] = set()
    shared: list[nn.Parameter] = []
    for module in shared_modules_of(model, method):
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                shared.append(p)
    specific = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    return shared, specific
