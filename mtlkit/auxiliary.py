r"""Auxiliary reconstruction task: one denoising autoencoder (DAE) per hidden layer of a trunk.

Belharbi et al. (2016), Sec. 3.1: for a trunk with :math:`K` hidden layers the secondary task is
a set of :math:`K` DAEs. DAE :math:`k` corrupts the representation :math:`x_{k-1}` (``x_0`` is
the input) with a noise function :math:`f`, encodes it with the trunk's own layer :math:`k` —
the coding parameters :math:`w_{c,k}` are *shared* with the supervised task — and decodes it
with its own layer :math:`w_{d,k}`:

.. math::

    \mathcal J_r = \sum_{k=1}^{K} \alpha_k\,
        \mathcal C_{dae,k}\big(g_k(e_k(f(x_{k-1}))),\ x_{k-1}\big)

with encoder :math:`e_k` = trunk block :math:`k`, decoder :math:`g_k`, and layer weights
:math:`\alpha_k` (1 in the paper: all DAEs share :math:`\lambda_r(t)`).

Choices the paper leaves open, and what we do:

* **Untied decoders.** The paper gives each DAE its own decoding parameters :math:`w_{d,k}`,
  separate from :math:`w_{c,k}`, so decoder :math:`k` is a new ``nn.Linear(widths[k+1],
  widths[k])``, not the transposed encoder weight.
* **Detached inputs and targets** (``detach_inputs=True``). Eq. (5) treats :math:`x_{k-1}` as the
  DAE's data, as in stacked-DAE pre-training (which ``stairs`` reproduces): DAE :math:`k`
  updates only :math:`w_{dae,k} = \{w_{c,k}, w_{d,k}\}`, not the layers below. Letting the
  gradient reach lower layers through the target would also reward them for making
  :math:`x_{k-1}` easy to reconstruct (e.g. constant). ``detach_inputs=False`` lets it flow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn

from mtlkit.nn._module import MultiTaskModule
from mtlkit.noise import NoiseFunction

ReconstructionCost = Literal["mse", "bce"]

__all__ = [
    "DenoisingAutoencoders",
    "ReconstructionCost",
    "WithReconstruction",
    "reconstruction_cost",
]


def reconstruction_cost(decoded: torch.Tensor, target: torch.Tensor, cost: ReconstructionCost) -> torch.Tensor:
    r"""Mean per-entry reconstruction cost :math:`\mathcal C(\hat x, x)` over a batch.

    * ``"mse"``: :math:`\frac{1}{Nd}\sum_{i,j} (\hat x_{ij} - x_{ij})^2`, ``decoded`` being
      :math:`\hat x`.
    * ``"bce"``: cross-entropy for targets in :math:`[0, 1]`,
      :math:`-\frac{1}{Nd}\sum_{i,j} x_{ij}\log\sigma(a_{ij}) + (1-x_{ij})\log(1-\sigma(a_{ij}))`,
      ``decoded`` being the logits :math:`a` (the reconstruction is :math:`\sigma(a)`); computed
      from the logits for numerical stability.

    Example:
        >>> import torch
        >>> reconstruction_cost(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 1.0]]), "mse")
        tensor(2.5000)
        >>> reconstruction_cost(torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]), "bce")
        tensor(0.6931)
    """
    if decoded.shape != target.shape:
        raise ValueError(f"reconstruction shape {tuple(decoded.shape)} != target shape {tuple(target.shape)}")
    if cost == "mse":
        return F.mse_loss(decoded, target)
    if cost == "bce":
        return F.binary_cross_entropy_with_logits(decoded, target)
    raise ValueError(f"unknown reconstruction cost {cost!r}; choose 'mse' or 'bce'")


class _BlockTrunk(Protocol):
    """What :meth:`DenoisingAutoencoders.for_trunk` reads from a trunk (as :class:`mtlkit.nn.MLP` has)."""

    blocks: Sequence[nn.Module]
    in_features: int
    widths: Sequence[int]


class _TaskModel(Protocol):
    tasks: Sequence[str]


class DenoisingAutoencoders(nn.Module):
    r"""The reconstruction task :math:`\mathcal J_r` of a trunk: one DAE per block (see module doc).

    ``forward(x)`` returns :math:`\mathcal J_r = \sum_k \alpha_k \mathcal C_k`, a scalar;
    :meth:`layer_costs` gives the :math:`\mathcal C_k`. The input is flattened first, like an MLP
    trunk's. The encoders are registered as submodules but are the trunk's very modules, so an
    optimiser over the whole model sees each shared parameter once and one update moves both.

    Args:
        encoders: the trunk's blocks; ``encoders[k]`` maps :math:`x_k` to :math:`x_{k+1}`
            (e.g. ``mlp.blocks``).
        widths: representation widths, input first: ``widths[k]`` is the width of :math:`x_k`
            (so ``len(widths) == len(encoders) + 1``).
        noise: the corruption :math:`f`, e.g. :class:`~mtlkit.noise.MaskingNoise`, applied in
            training and evaluation alike (:math:`\mathcal J_r` *is* the denoising criterion);
            ``None`` for plain (not denoising) autoencoders.
        cost: ``"mse"`` or ``"bce"`` (for representations in :math:`[0, 1]`, e.g. pixels or
            sigmoid units), for all layers or one per layer.
        decoder_activation: factory of the decoders' output activation (e.g. ``nn.Sigmoid``);
            ``None`` for linear decoders. Not allowed with ``"bce"``, whose decoder gives logits.
        layer_weights: :math:`\alpha_k \in [0, 1]` per DAE; all 1 by default (Eq. 5).
        detach_inputs: treat :math:`x_{k-1}` as data for DAE :math:`k` (see module doc).
        sum_over_units: make :math:`\mathcal C_k` a per-example cost *summed* over the
            :math:`d_k` units of :math:`x_{k-1}` (then averaged over the batch), i.e.
            :math:`d_k` times the per-entry mean — the convention of Vincent et al. (2010). Its
            gradients are :math:`d_k` times larger, which matters against :math:`\mathcal J_s`
            (a per-example cost) at a given learning rate.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from mtlkit.noise import MaskingNoise
        >>> blocks = nn.ModuleList([nn.Sequential(nn.Linear(784, 50), nn.Sigmoid())])
        >>> daes = DenoisingAutoencoders(blocks, [784, 50], noise=MaskingNoise(0.25), cost="bce")
        >>> daes.decoders[0]
        Linear(in_features=50, out_features=784, bias=True)
        >>> daes(torch.rand(8, 1, 28, 28)).shape  # J_r is a scalar
        torch.Size([])
        >>> daes.encoders[0][0].weight is blocks[0][0].weight  # shared, not copied
        True
    """

    layer_weights: torch.Tensor  # a buffer (registered in __init__); declared for the type checker

    def __init__(
        self,
        encoders: Sequence[nn.Module],
        widths: Sequence[int],
        *,
        noise: NoiseFunction | None,
        cost: ReconstructionCost | Sequence[ReconstructionCost] = "mse",
        decoder_activation: Callable[[], nn.Module] | None = None,
        layer_weights: Sequence[float] | None = None,
        detach_inputs: bool = True,
        sum_over_units: bool = False,
    ) -> None:
        super().__init__()
        depth = len(encoders)
        if depth == 0:
            raise ValueError("DenoisingAutoencoders needs at least one encoder block")
        if len(widths) != depth + 1:
            raise ValueError(
                f"got {depth} encoder blocks and {len(widths)} widths {list(widths)}; widths lists "
                f"the input width first, so it needs {depth + 1} entries"
            )
        if any(int(w) != w or w <= 0 for w in widths):
            raise ValueError(f"widths must be positive integers, got {list(widths)}")
        for k, encoder in enumerate(encoders):
            _check_linear_encoder(k, encoder, widths[k], widths[k + 1])
        costs = [cost] * depth if isinstance(cost, str) else list(cost)
        if len(costs) != depth:
            raise ValueError(f"got {len(costs)} costs {costs} for {depth} DAEs")
        for k, layer_cost in enumerate(costs):
            if layer_cost not in ("mse", "bce"):
                raise ValueError(f"DAE {k}: unknown cost {layer_cost!r}; choose 'mse' or 'bce'")
        if decoder_activation is not None and "bce" in costs:
            raise ValueError(
                "decoder_activation must be None with the 'bce' cost: its decoder outputs logits "
                "and the sigmoid is part of the cost"
            )
        weights = [1.0] * depth if layer_weights is None else [float(w) for w in layer_weights]
        if len(weights) != depth:
            raise ValueError(f"got {len(weights)} layer weights {weights} for {depth} DAEs")
        for k, w in enumerate(weights):
            if not (math.isfinite(w) and 0.0 <= w <= 1.0):
                raise ValueError(f"DAE {k}: layer weight must be in [0, 1], got {w}")

        self.encoders = nn.ModuleList(encoders)
        self.decoders = nn.ModuleList(_decoder(widths[k + 1], widths[k], decoder_activation) for k in range(depth))
        self.widths = tuple(int(w) for w in widths)
        self.noise = noise
        self.costs: tuple[ReconstructionCost, ...] = tuple(costs)
        self.detach_inputs = detach_inputs
        self.sum_over_units = sum_over_units
        self.register_buffer("layer_weights", torch.tensor(weights), persistent=False)

    @classmethod
    def for_trunk(cls, trunk: nn.Module, **options: Any) -> DenoisingAutoencoders:
        """DAEs on every block of a trunk with ``blocks``, ``in_features`` and ``widths``
        attributes (such as :class:`mtlkit.nn.MLP`); ``options`` as in the constructor.

        Example:
            >>> from torch import nn
            >>> class Trunk(nn.Module):  # stands for mtlkit.nn.MLP(4, [3, 2])
            ...     in_features, widths = 4, (3, 2)
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.blocks = nn.ModuleList([nn.Linear(4, 3), nn.Linear(3, 2)])
            >>> DenoisingAutoencoders.for_trunk(Trunk(), noise=None).widths
            (4, 3, 2)
        """
        missing = [name for name in ("blocks", "in_features", "widths") if not hasattr(trunk, name)]
        if missing:
            raise AttributeError(
                f"{type(trunk).__name__} has no {missing}; pass its blocks and widths to "
                "DenoisingAutoencoders(encoders, widths, ...) instead"
            )
        # The attributes were checked above; the cast only tells the type checker so.
        typed = cast(_BlockTrunk, trunk)
        widths = [typed.in_features, *typed.widths]
        return cls(typed.blocks, widths, **options)

    def layer_costs(self, x: torch.Tensor) -> list[torch.Tensor]:
        r"""Per-DAE costs :math:`\mathcal C_k(g_k(e_k(f(x_{k-1}))), x_{k-1})` for :math:`k=1..K`.

        Means over the batch and the units, or sums over the units with ``sum_over_units``.
        """
        clean = x.flatten(1)
        if clean.shape[1] != self.widths[0]:
            raise ValueError(
                f"input of shape {tuple(x.shape)} flattens to {clean.shape[1]} features, "
                f"but widths[0] = {self.widths[0]}"
            )
        costs = []
        last = len(self.encoders) - 1
        for k, (encoder, decoder) in enumerate(zip(self.encoders, self.decoders, strict=True)):
            source = clean.detach() if self.detach_inputs else clean
            corrupted = source if self.noise is None else self.noise(source)
            code = encoder(corrupted)
            if code.dim() != 2 or code.shape[1] != self.widths[k + 1]:
                raise ValueError(
                    f"encoder {k} maps ({source.shape[0]}, {self.widths[k]}) to "
                    f"{tuple(code.shape)}, but widths[{k + 1}] = {self.widths[k + 1]}"
                )
            if self.costs[k] == "bce" and not bool(((source >= 0) & (source <= 1)).all()):
                raise ValueError(
                    f"DAE {k}: the 'bce' cost needs a target x_{k} in [0, 1], got values in "
                    f"[{source.min().item():.3g}, {source.max().item():.3g}]; use 'mse'"
                )
            cost = reconstruction_cost(decoder(code), source, self.costs[k])
            costs.append(cost * self.widths[k] if self.sum_over_units else cost)
            if k < last:
                # The next DAE's data x_{k+1} is the *clean* representation. With detached
                # inputs it needs no graph, which saves the memory of a second trunk pass.
                with torch.set_grad_enabled(torch.is_grad_enabled() and not self.detach_inputs):
                    clean = encoder(clean)
        return costs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal J_r = \sum_k \alpha_k \mathcal C_k` for the batch ``x`` (a scalar)."""
        costs = torch.stack(self.layer_costs(x))
        return (self.layer_weights.to(costs.dtype) * costs).sum()


class WithReconstruction(MultiTaskModule):
    r"""A multi-task model plus the reconstruction task: ``{**model(x, tasks), task: J_r}``.

    The reconstruction output *is* its loss, so the Trainer's loss function for ``task`` is
    ``None``. Only what is asked for is computed: ``tasks=["reconstruction"]`` (phase 1 of the
    paper's Alg. 1) does not run the model's heads, and a request without ``task`` does not run
    the DAEs. Each phase's loss is scaled by its weight, :math:`\lambda_r(t)\mathcal J_r` then
    :math:`\lambda_s(t)\mathcal J_s` — Alg. 1 does not write the :math:`\lambda`\ s, but it
    minimises Eq. (4) and ``stairs`` is pre-training only if a zero weight skips the task.

    Args:
        model: ``forward(x, tasks=None) -> dict[str, Tensor]`` (e.g.
            :class:`mtlkit.nn.MultiTaskModel`) whose trunk blocks are ``daes.encoders``.
        daes: the reconstruction task on that trunk.
        task: name of the reconstruction output.

    Raises:
        ValueError: an encoder's parameters are not the model's (the DAEs would train a copy).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> class Net(nn.Module):  # stands for MultiTaskModel(MLP(4, [3]), {"class": ...})
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 3), nn.ReLU())])
        ...         self.head = nn.Linear(3, 2)
        ...     def forward(self, x, tasks=None):
        ...         return {"class": self.head(self.blocks[0](x))}
        >>> net = Net()
        >>> model = WithReconstruction(net, DenoisingAutoencoders(net.blocks, [4, 3], noise=None))
        >>> sorted(model(torch.zeros(5, 4)))
        ['class', 'reconstruction']
        >>> list(model(torch.zeros(5, 4), tasks=["reconstruction"]))
        ['reconstruction']
    """

    def __init__(self, model: nn.Module, daes: DenoisingAutoencoders, task: str = "reconstruction") -> None:
        super().__init__()
        model_parameters = {id(p) for p in model.parameters()}
        for k, encoder in enumerate(daes.encoders):
            if any(id(p) not in model_parameters for p in encoder.parameters()):
                raise ValueError(
                    f"encoder {k} of the DAEs is not part of the model (a copy?); build the DAEs "
                    "on the model's own trunk blocks so that both tasks share them"
                )
        self.model = model
        self.daes = daes
        self.task = task

    @property
    def tasks(self) -> tuple[str, ...]:  # type: ignore[override]  # the base declares an attribute; here it is derived
        """The wrapped model's tasks, then the reconstruction task."""
        # The documented contract of ``model`` (a MultiTaskModel or alike) is that it has ``tasks``.
        return (*cast(_TaskModel, self.model).tasks, self.task)

    def shared_modules(self) -> list[nn.Module]:
        """The wrapped model's shared modules (the DAEs' encoders are among its trunk blocks)."""
        return self.model.shared_modules() if isinstance(self.model, MultiTaskModule) else []

    def forward(
        self, x: torch.Tensor | Mapping[str, torch.Tensor], tasks: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        if tasks is None:
            outputs = dict(self.model(x))
        else:
            model_tasks = [t for t in tasks if t != self.task]
            outputs = dict(self.model(x, tasks=model_tasks)) if model_tasks else {}
        if tasks is None or self.task in tasks:
            if self.task in outputs:
                raise ValueError(f"the model already has an output named {self.task!r}")
            if isinstance(x, Mapping):
                raise TypeError(f"the {self.task!r} task needs one input batch, not a mapping of per-task inputs")
            outputs[self.task] = self.daes(x)
        return outputs


def _decoder(in_features: int, out_features: int, activation: Callable[[], nn.Module] | None) -> nn.Module:
    linear = nn.Linear(in_features, out_features)
    return linear if activation is None else nn.Sequential(linear, activation())


def _check_linear_encoder(k: int, encoder: nn.Module, n_in: int, n_out: int) -> None:
    """Catch a widths/encoder mismatch at construction when the block has one ``nn.Linear``."""
    linears = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    if len(linears) == 1 and (linears[0].in_features, linears[0].out_features) != (n_in, n_out):
        raise ValueError(
            f"encoder {k} maps {linears[0].in_features} -> {linears[0].out_features} features, "
            f"but widths[{k}] -> widths[{k + 1}] is {n_in} -> {n_out}"
        )
