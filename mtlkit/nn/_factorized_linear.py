"""``FactorizedLinear``: ``T`` fully-connected layers softly shared through a factorised weight."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlkit.factorization import FactorizationMethod, InputProjection, input_projection
from mtlkit.nn._factorized_base import FactorizedLayer, Ranks


class FactorizedLinear(FactorizedLayer):
    """``T`` linear layers ``y_t = x_t W[..., t] + b[:, t]``, ``W`` composed by LAF, Tucker or TT.

    Weight axis order is ``(in, out, T)`` (the paper's TF code); ``task_weights()[..., t]`` is the
    transpose of an ``nn.Linear`` weight. Biases ``(out, T)`` are per task.

    Input is either shared by all tasks, ``(B, in)``, or one batch per task, ``(T, B, in)``; the
    output is always ``(T, B, out)``. Tucker and TT factorise the input axis, so when their rank
    ``R`` makes ``in·R + R·out < in·out`` the layer runs as ``(x · P) · Q_t`` and never builds the
    weights (:meth:`input_projection`). Otherwise per-task inputs run as one batched GEMM against the
    task-major weights ``(T, in, out)``; a shared input does too, or goes through the ``K`` shared
    basis matrices and is mixed per task afterwards (see ``shared_input_path``).

    Args:
        in_features, out_features, num_tasks: layer sizes and number of tasks ``T``.
        method: ``"laf"``, ``"tucker"`` or ``"tt"``.
        ranks: LAF ``K``; Tucker ``(K_in, K_out, K_T)``; TT ``(K_1, K_2)``; an ``int`` means that
            rank on every mode (capped per mode). ``None`` ε-truncates the random dense init.
        eps: relative error used when ``ranks`` is ``None``.
        bias: learn per-task biases.

    >>> _ = torch.manual_seed(0)
    >>> layer = FactorizedLinear(8, 4, num_tasks=3, method="tucker", ranks=(4, 2, 2))
    >>> layer(torch.randn(5, 8)).shape, layer.task_weights().shape
    (torch.Size([3, 5, 4]), torch.Size([8, 4, 3]))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_tasks: int,
        method: FactorizationMethod = "laf",
        ranks: Ranks | None = None,
        *,
        eps: float = 0.1,
        bias: bool = True,
    ) -> None:
        self.in_features, self.out_features = int(in_features), int(out_features)
        super().__init__((in_features, out_features, num_tasks), in_features, method, ranks, eps, bias)

    @classmethod
    def from_dense(
        cls,
        layers: Sequence[nn.Linear],
        method: FactorizationMethod = "laf",
        *,
        eps: float = 0.1,
        ranks: Ranks | None = None,
    ) -> FactorizedLinear:
        """Initialise from ``T`` trained single-task ``nn.Linear`` layers (paper's STL init).

        The weights stack to ``(in, out, T)`` and are decomposed with relative error ``≤ eps``
        (or with fixed ``ranks``); biases are copied.

        >>> _ = torch.manual_seed(0)
        >>> dense = [nn.Linear(6, 3) for _ in range(4)]
        >>> layer = FactorizedLinear.from_dense(dense, "tt", eps=0.0)
        >>> torch.allclose(layer.task_weights()[..., 2], dense[2].weight.T, atol=1e-5)
        True
        """
        if len(layers) == 0:
            raise ValueError("FactorizedLinear.from_dense: need at least one nn.Linear")
        first = layers[0]
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Linear) or layer.weight.shape != first.weight.shape:
                raise ValueError(
                    f"FactorizedLinear.from_dense: layer {index} is {layer!r}; all layers must be "
                    f"nn.Linear({first.in_features}, {first.out_features})"
                )
        has_bias = all(layer.bias is not None for layer in layers)
        module = cls(first.in_features, first.out_features, len(layers), method, ranks=1, bias=has_bias)
        stacked = torch.stack([layer.weight.detach().T for layer in layers], dim=-1)
        biases = torch.stack([layer.bias.detach() for layer in layers], dim=-1) if has_bias else None
        module._load_task_weights(stacked, biases, eps, ranks)
        return module

    def _check_input(self, inputs: Tensor) -> bool:
        """Return ``True`` for a shared input, ``False`` for per-task inputs; raise otherwise."""
        if inputs.dim() == 2 and inputs.shape[1] == self.in_features:
            return True
        if inputs.dim() == 3 and inputs.shape[0] == self.num_tasks and inputs.shape[2] == self.in_features:
            return False
        raise ValueError(
            f"{type(self).__name__}(in={self.in_features}, out={self.out_features}, "
            f"T={self.num_tasks}): expected input (B, {self.in_features}) or "
            f"(T={self.num_tasks}, B, {self.in_features}), got {tuple(inputs.shape)}"
        )

    def forward(self, inputs: Tensor) -> Tensor:
        """``(B, in)`` or ``(T, B, in)`` → ``(T, B, out)``, all tasks in one batched kernel."""
        shared = self._check_input(inputs)
        if self._project_input():
            # y_t = (x_t · P) · Q_t: in·R + R·out multiply-adds per row instead of in·out.
            projection, task_maps = self.input_projection()  # type: ignore[misc]
            outputs = torch.matmul(inputs @ projection, task_maps)
        elif shared and self._mix_shared_input():
            # y_t = Σ_k (x · basis_k) M[t, k]: B·in·out·K + B·out·K·T multiply-adds instead of
            # composing T weights (in·out·K·T) and applying them (B·in·out·T).
            basis, task_matrix = self.task_basis()
            rank = basis.shape[-1]
            projected = inputs @ basis.reshape(self.in_features, self.out_features * rank)
            outputs = (projected.reshape(-1, rank) @ task_matrix.T).reshape(
                inputs.shape[0], self.out_features, self.num_tasks
            )
            outputs = outputs.permute(2, 0, 1)
        else:
            weights = self.task_major_weights()  # (T, in, out)
            outputs = torch.matmul(inputs.unsqueeze(0) if shared else inputs, weights)
        return outputs if self.bias is None else outputs + self.bias.T.unsqueeze(1)

    def input_projection(self) -> InputProjection | None:
        """``W[:, :, t] = P @ Q[t]`` for Tucker and TT (see :func:`~mtlkit.factorization.input_projection`)."""
        return self._cached("projection", lambda: input_projection(self.method, list(self.factors)))

    def _project_input(self) -> bool:
        """Apply the layer through its input projection when that takes fewer multiply-adds."""
        if self.method == "laf":
            return False
        rank = self.factors[1].shape[1] if self.method == "tucker" else self.factors[0].shape[2]
        return self.in_features * rank + rank * self.out_features < self.in_features * self.out_features

    def forward_tasks(self, inputs: Tensor | Sequence[Tensor]) -> list[Tensor]:
        shared, task_inputs, task_biases = self._per_task_inputs_and_biases(inputs)
        if self._project_input():
            projection, task_maps = self.input_projection()  # type: ignore[misc]
            if shared:  # project the shared batch once
                task_inputs = [task_inputs[0] @ projection] * self.num_tasks
            else:
                task_inputs = [x @ projection for x in task_inputs]
            weights = [q.T for q in task_maps.unbind(0)]
        else:
            weights = [w.T for w in self.task_major_weights().unbind(0)]
        return [F.linear(x, w, b) for x, w, b in zip(task_inputs, weights, task_biases, strict=True)]

    def forward_per_task(self, inputs: Tensor) -> Tensor:
        """Reference implementation: compose once, then a plain loop of ``F.linear`` over tasks."""
        _, task_inputs, task_biases = self._per_task_inputs_and_biases(inputs)
        task_weights = self.task_major_weights().unbind(0)
        return torch.stack(
            [F.linear(x, w.T, b) for x, w, b in zip(task_inputs, task_weights, task_biases, strict=True)]
        )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " + super().extra_repr()
