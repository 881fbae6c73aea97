r"""Plots and feature visualisations for trained models: independent functions, one per figure kind.

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` built without ``pyplot``,
so no GUI backend or global figure state is involved (PNG output goes through Agg) and the
functions are safe in scripts, tests and notebooks alike; save with
``fig.savefig(path, dpi=120)``. matplotlib is imported only when a plot is made: install the
``viz`` extra (``pip install "mtlkit[viz]"``) to use them. :func:`capture_activations` and
:func:`deep_dream` need only torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "capture_activations",
    "deep_dream",
    "hidden_features",
    "plot_activations",
    "plot_curves",
    "plot_embedding_2d",
    "plot_filters",
    "plot_image_grid",
    "plot_sweep",
    "plot_tradeoff",
    "plot_tsne_panels",
    "plot_two_task_scores",
    "tsne_2d",
]


def _new_figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure  # noqa: PLC0415 - matplotlib is the optional [viz] extra
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            'mtlkit.viz plots need matplotlib: install the viz extra with pip install "mtlkit[viz]"'
        ) from err
    return Figure(figsize=(width, height), layout="constrained")


def _label_line_axes(ax: Any, xlabel: str, ylabel: str, title: str | None) -> None:
    """The finishing touches every line plot here shares: axis labels, title, grid, legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def _as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


# --------------------------------------------------------------------------- embeddings and curves
def plot_embedding_2d(
    points: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    class_names: Sequence[str] | None = None,
    *,
    axis_labels: tuple[str, str] = ("component 1", "component 2"),
    title: str | None = None,
    max_points: int | None = 10_000,
    seed: int = 0,
) -> Figure:
    """Scatter of a 2-D embedding (PCA, t-SNE, …), one colour per class.

    Args:
        points: ``(N, 2)`` coordinates.
        labels: ``(N,)`` integer classes.
        class_names: legend entry of class ``k`` (default the integer).
        axis_labels: x and y axis titles.
        title: figure title.
        max_points: plot a random subset of this many points (all if ``None``) so dense
            classes do not hide the others under 60 000 markers.
        seed: seed of that subset.

    Example:
        >>> fig = plot_embedding_2d(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 3)
        >>> len(fig.axes[0].collections)
        3
    """
    points, labels = _as_numpy(points), _as_numpy(labels)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (N, 2), got shape {points.shape}")
    if labels.shape != (points.shape[0],):
        raise ValueError(f"labels must be ({points.shape[0]},), got shape {labels.shape}")
    if max_points is not None and len(points) > max_points:
        keep = np.random.default_rng(seed).choice(len(points), max_points, replace=False)
        points, labels = points[keep], labels[keep]
    fig = _new_figure(6.5, 5.5)
    ax = fig.add_subplot()
    classes = np.unique(labels)
    colours = _class_colours(len(classes))
    for colour, cls in zip(colours, classes, strict=True):
        mask = labels == cls
        name = class_names[int(cls)] if class_names is not None else str(cls)
        ax.scatter(points[mask, 0], points[mask, 1], s=3, alpha=0.5, color=colour, label=name, rasterized=True)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    legend = ax.legend(markerscale=4, fontsize="small", loc="best", ncols=2 if len(classes) > 5 else 1)
    for handle in legend.legend_handles:
        if handle is not None:  # matplotlib has no handle for artists it cannot draw in a legend
            handle.set_alpha(1.0)
    if title:
        ax.set_title(title)
    return fig


def _class_colours(n: int) -> list[Any]:
    from matplotlib import colormaps  # noqa: PLC0415 - matplotlib is the optional [viz] extra

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_curves(
    history: Sequence[Mapping[str, float]],
    keys: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    x_key: str = "epoch",
    xlabel: str = "epoch",
    ylabel: str | None = None,
    title: str | None = None,
) -> Figure:
    """Line plot of per-epoch records, one line per key (e.g. train vs test accuracy).

    Args:
        history: records such as :meth:`mtlkit.Trainer.fit` returns, each a dict of numbers.
        keys: the record entries to draw; records missing a key are skipped for that line.
        labels: legend entries (default the keys).
        x_key: entry used for the x axis (its position 1, 2, … if absent).
        xlabel, ylabel, title: axis and figure titles.

    Example:
        >>> fig = plot_curves([{"epoch": 1, "acc": 0.9}, {"epoch": 2, "acc": 0.95}], ["acc"])
        >>> fig.axes[0].lines[0].get_ydata().tolist()
        [0.9, 0.95]
    """
    if not keys:
        raise ValueError("plot_curves needs at least one key")
    if labels is not None and len(labels) != len(keys):
        raise ValueError(f"got {len(labels)} labels for {len(keys)} keys")
    if not any(key in record for record in history for key in keys):
        raise KeyError(f"none of {list(keys)} appears in the history")
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    for index, key in enumerate(keys):
        xs = [r.get(x_key, i + 1) for i, r in enumerate(history) if key in r]
        ys = [r[key] for r in history if key in r]
        ax.plot(xs, ys, marker="o", markersize=3, label=labels[index] if labels else key)
    _label_line_axes(ax, xlabel, ylabel or "", title)
    return fig


def plot_sweep(
    x: Sequence[float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    *,
    references: Mapping[str, float] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
) -> Figure:
    """Metric against a swept hyperparameter: mean ± std error bars per series, plus reference lines.

    Args:
        x: the hyperparameter values (e.g. the loss weights λ).
        series: name → ``(means, stds)`` at each ``x`` (``stds`` may be ``None``).
        references: name → a constant drawn as a dashed horizontal line (e.g. a single-task baseline).
        xlabel, ylabel, title: axis and figure titles.

    Example:
        >>> fig = plot_sweep([0, 0.5, 1], {"item": ([0.8, 0.9, 0.9], [0.01, 0.0, 0.02])}, references={"STL": 0.9})
        >>> len(fig.axes[0].lines) >= 2
        True
    """
    if not series:
        raise ValueError("plot_sweep needs at least one series")
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    colours = _class_colours(len(series) + len(references or {}))
    for colour, (name, (means, stds)) in zip(colours, series.items(), strict=False):
        if len(means) != len(x) or (stds is not None and len(stds) != len(x)):
            raise ValueError(f"series {name!r} has {len(means)} values for {len(x)} x positions")
        ax.errorbar(
            list(x),
            list(means),
            yerr=None if stds is None else list(stds),
            marker="o",
            capsize=3,
            color=colour,
            label=name,
        )
    for colour, (name, value) in zip(colours[len(series) :], (references or {}).items(), strict=False):
        ax.axhline(value, linestyle="--", color=colour, label=name)
    _label_line_axes(ax, xlabel, ylabel, title)
    return fig


def plot_tradeoff(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    xlabel: str = "",
    ylabel: str = "",
    log_x: bool = False,
    title: str | None = None,
) -> Figure:
    """Points ``(cost, quality)`` per model family, e.g. test accuracy against parameter count.

    Args:
        series: family name → ``[(x, y), …]``, one point per model; points are joined in x order.
        xlabel, ylabel, title: axis and figure titles.
        log_x: logarithmic x axis (parameter counts span orders of magnitude).

    Example:
        >>> fig = plot_tradeoff({"CNN": [(1e5, 0.99), (2e5, 0.991)], "MLP": [(1e6, 0.98)]}, log_x=True)
        >>> len(fig.axes[0].lines)
        2
    """
    if not series:
        raise ValueError("plot_tradeoff needs at least one series")
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    for name, points in series.items():
        ordered = sorted(points)
        ax.plot([p[0] for p in ordered], [p[1] for p in ordered], marker="o", linestyle=":", label=name)
    if log_x:
        ax.set_xscale("log")
    _label_line_axes(ax, xlabel, ylabel, title)
    return fig


_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def plot_two_task_scores(
    points: Mapping[str, tuple[float, float, float, float]],
    *,
    xlabel: str = "task 1",
    ylabel: str = "task 2",
    reference: str | None = None,
    title: str | None = None,
) -> Figure:
    """One point per method in the plane of two tasks' scores, with ± error bars on both axes.

    Shows at a glance whether a balancing method trades one task for the other or moves both:
    points up and to the right of ``reference`` (dashed cross-hairs, e.g. plain summing or the
    single-task nets) are better on both tasks.

    Args:
        points: method → ``(mean_1, err_1, mean_2, err_2)``; an error of 0 draws no bar.
        xlabel, ylabel, title: axis and figure titles.
        reference: a key of ``points`` to draw cross-hairs through.

    Example:
        >>> fig = plot_two_task_scores({"EW": (95.0, 0.2, 93.0, 0.3), "UW": (95.2, 0.1, 93.4, 0.2)},
        ...                            reference="EW")
        >>> len(fig.axes[0].containers)
        2
    """
    if not points:
        raise ValueError("plot_two_task_scores needs at least one point")
    if reference is not None and reference not in points:
        raise ValueError(f"reference={reference!r} is not one of the methods {sorted(points)}")
    for name, values in points.items():
        if len(values) != 4 or not all(math.isfinite(v) for v in values) or min(values[1], values[3]) < 0:
            raise ValueError(f"point {name!r} must be finite (mean_1, err_1 >= 0, mean_2, err_2 >= 0), got {values}")
    fig = _new_figure(7.5, 4.5)
    ax = fig.add_subplot()
    if reference is not None:
        x0, _, y0, _ = points[reference]
        ax.axvline(x0, color="grey", linestyle="--", linewidth=0.8)
        ax.axhline(y0, color="grey", linestyle="--", linewidth=0.8)
    from matplotlib import colormaps  # noqa: PLC0415 - matplotlib is the optional [viz] extra

    # Colour and marker cycle at different periods, so that up to 70 points stay distinguishable.
    colours = [colormaps["tab10"](k) for k in range(10)]
    for k, (name, (x, x_err, y, y_err)) in enumerate(points.items()):
        ax.errorbar(x, y, xerr=x_err, yerr=y_err, fmt=_MARKERS[k % len(_MARKERS)], color=colours[k % len(colours)],
                    capsize=3, label=name)  # fmt: skip
    _label_line_axes(ax, xlabel, ylabel, title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)  # beside the points, not on them
    return fig


# --------------------------------------------------------------------------- image grids
def plot_image_grid(
    images: np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor],
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "gray",
    symmetric: bool = False,
    suptitle: str | None = None,
    cell_size: float = 1.0,
) -> Figure:
    """Show 2-D arrays (images, filters, weight vectors reshaped) on a grid.

    Args:
        images: ``(N, H, W)`` array/tensor or a sequence of ``(H, W)`` arrays.
        titles: one short title per image.
        ncols: images per row (default about :math:`\\sqrt{N}`, at most 16).
        cmap: colour map; pass a diverging one (``"RdBu_r"``) with ``symmetric=True`` for signed
            weights so that 0 is the neutral colour.
        symmetric: scale each image to ``[-m, m]`` with ``m = max |value|``.
        suptitle: title over the whole grid.
        cell_size: inches per image.

    Example:
        >>> fig = plot_image_grid(np.zeros((5, 4, 4)), ncols=3)
        >>> sum(ax.get_visible() for ax in fig.axes)
        5
    """
    arrays = [_as_numpy(img) for img in images]
    if not arrays:
        raise ValueError("no images to plot")
    if any(a.ndim != 2 for a in arrays):
        raise ValueError(f"every image must be 2-D (H, W), got shapes {[a.shape for a in arrays][:3]}…")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"got {len(titles)} titles for {len(arrays)} images")
    n = len(arrays)
    ncols = ncols or min(16, math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    fig = _new_figure(cell_size * ncols + 0.2, cell_size * nrows + (0.4 if suptitle else 0.1))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= n:
            ax.set_visible(False)
            continue
        img = arrays[index]
        if symmetric:
            m = float(np.abs(img).max()) or 1.0
            ax.imshow(img, cmap=cmap, vmin=-m, vmax=m)
        else:
            ax.imshow(img, cmap=cmap)
        if titles is not None:
            ax.set_title(titles[index], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def _mosaic(tiles: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
    """Tile ``(N, h, w)`` arrays into one ``(rows·(h+pad), ncols·(w+pad))`` image, NaN in the gaps.

    One ``imshow`` of a mosaic is much faster to lay out and draw than one axes per tile.
    """
    n, h, w = tiles.shape
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), np.nan)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, ncols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tile
    return out


def _show_mosaic(ax: Any, mosaic: np.ndarray, cmap: str, vmin: float, vmax: float) -> None:
    from matplotlib import colormaps  # noqa: PLC0415 - matplotlib is the optional [viz] extra

    colours = colormaps[cmap].with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=colours, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_filters(
    conv_weight: torch.Tensor | np.ndarray,
    *,
    reduce: str = "mean",
    max_filters: int | None = 128,
    ncols: int = 16,
    title: str | None = None,
) -> Figure:
    """The kernels of one convolution layer on a grid, one tile per output channel (row-major).

    A first-layer kernel on grey images is a single ``k × k`` patch. Deeper kernels have one
    patch per input channel, so ``reduce`` picks what to draw: ``"mean"`` (average over input
    channels: the response to a uniform multi-channel input) or ``"first"`` (input channel 0).
    Each tile is scaled by its own largest absolute weight and drawn with a diverging map
    centred on 0 (red positive, blue negative), so excitatory and inhibitory parts read apart
    whatever the filter's norm.

    Args:
        conv_weight: ``(out, in, kH, kW)`` (``conv.weight``).
        reduce: ``"mean"`` or ``"first"`` over input channels.
        max_filters: draw at most this many output channels.
        ncols: tiles per row.
        title: figure title.

    Example:
        >>> fig = plot_filters(torch.nn.Conv2d(1, 6, 4).weight, ncols=3)
        >>> fig.axes[0].images[0].get_array().shape
        (9, 14)
    """
    weight = _as_numpy(conv_weight)
    if weight.ndim != 4:
        raise ValueError(f"conv_weight must be (out, in, kH, kW), got shape {weight.shape}")
    if reduce == "mean":
        kernels = weight.mean(axis=1)
    elif reduce == "first":
        kernels = weight[:, 0]
    else:
        raise ValueError(f"reduce must be 'mean' or 'first', got {reduce!r}")
    if max_filters is not None:
        kernels = kernels[:max_filters]
    scale = np.abs(kernels).max(axis=(1, 2), keepdims=True)
    kernels = kernels / np.where(scale > 0, scale, 1.0)
    ncols = min(ncols, len(kernels))
    mosaic = _mosaic(kernels, ncols)
    fig = _new_figure(min(12.0, 0.5 * ncols + 0.5), min(12.0, 0.5 * math.ceil(len(kernels) / ncols) + 0.6))
    ax = fig.add_subplot()
    _show_mosaic(ax, mosaic, "RdBu_r", -1.0, 1.0)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


# --------------------------------------------------------------------------- activations
def capture_activations(model: nn.Module, x: torch.Tensor, layers: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Outputs of the given sub-modules of ``model`` on input ``x`` (via forward hooks).

    The model runs once in eval mode without gradients, on the device of its parameters; hooks
    are removed afterwards even if the forward pass fails, and the model's train/eval mode is
    restored.

    Args:
        model: the network; called as ``model(x)``.
        x: one batch of inputs.
        layers: name → sub-module of ``model`` whose output to keep (e.g. a ``ConvNet``'s
            ``layers[i]``, which is the convolution *and* its ReLU).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU())
        >>> acts = capture_activations(net, torch.zeros(1, 1, 8, 8), {"conv": net[0]})
        >>> tuple(acts["conv"].shape)
        (1, 3, 6, 6)
    """
    if not layers:
        raise ValueError("name at least one layer to capture")
    owned = {id(m) for m in model.modules()}
    foreign = [name for name, module in layers.items() if id(module) not in owned]
    if foreign:
        raise ValueError(f"layer(s) {foreign} are not sub-modules of the model")
    captured: dict[str, torch.Tensor] = {}

    def hook_for(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            captured[name] = output.detach().clone()

        return hook

    parameter = next(model.parameters(), None)
    if parameter is not None:
        x = x.to(parameter.device)
    handles = [module.register_forward_hook(hook_for(name)) for name, module in layers.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return captured


def plot_activations(
    model: nn.Module,
    x: torch.Tensor,
    layers: Mapping[str, nn.Module],
    *,
    max_channels: int = 32,
    ncols: int = 16,
    title: str | None = None,
) -> Figure:
    """Feature maps of each named layer for one input: one panel per layer, one tile per channel.

    Each map is scaled by its own maximum absolute value (viridis, dark = 0), so a weak but
    structured map stays visible next to a strong one; tiles are in channel order, row-major.

    Args:
        model: the network.
        x: a single input ``(C, H, W)`` or a batch of one ``(1, C, H, W)``.
        layers: name → sub-module whose ``(1, channels, h, w)`` output to show.
        max_channels: show the first this many channels of each layer.
        ncols: feature maps per row.
        title: figure title.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
        >>> fig = plot_activations(net, torch.rand(1, 8, 8), {"conv1": net[1], "conv2": net[2]}, ncols=4)
        >>> len(fig.axes)
        2
    """
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"x must be one input (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}")
    acts = capture_activations(model, x, layers)
    panels: list[tuple[str, np.ndarray, int]] = []
    for name in layers:
        act = acts[name]
        if act.dim() != 4:
            raise ValueError(f"layer {name!r} outputs shape {tuple(act.shape)}, not feature maps (1, C, h, w)")
        maps = act[0, :max_channels].cpu().numpy()
        scale = np.abs(maps).max(axis=(1, 2), keepdims=True)
        maps = maps / np.where(scale > 0, scale, 1.0)
        cols = min(ncols, len(maps))
        panels.append(
            (f"{name}: {len(maps)} of {act.shape[1]} maps, {maps.shape[1]}×{maps.shape[2]}", _mosaic(maps, cols), cols)
        )
    # Panel heights follow the mosaics' aspect ratios, so tiles keep square pixels without gaps.
    heights = [8.0 * mosaic.shape[0] / mosaic.shape[1] + 0.35 for _, mosaic, _ in panels]
    fig = _new_figure(8.0, sum(heights) + (0.4 if title else 0.0))
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (caption, mosaic, _) in zip(axes, panels, strict=True):
        _show_mosaic(ax, mosaic, "viridis", 0.0 if np.nanmin(mosaic) >= 0 else -1.0, 1.0)
        ax.set_title(caption, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- DeepDream
def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``(1, C, H, W)`` image with reflect padding."""
    radius = max(1, math.ceil(2.5 * sigma))
    radius = min(radius, img.shape[-1] - 1, img.shape[-2] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = img.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    img = F.conv2d(F.pad(img, (radius, radius, 0, 0), mode="reflect"), horizontal, groups=channels)
    return F.conv2d(F.pad(img, (0, 0, radius, radius), mode="reflect"), vertical, groups=channels)


def deep_dream(  # noqa: PLR0915 - validation of its many options, then one optimisation loop
    model: nn.Module,
    target_class: int,
    steps: int = 100,
    lr: float = 0.05,
    jitter: int = 2,
    blur_sigma: float = 0.5,
    octaves: int = 2,
    *,
    octave_scale: float = 1.5,
    input_shape: Sequence[int] | None = None,
    value_range: tuple[float, float] | None = None,
    l2: float = 1e-3,
    init: torch.Tensor | None = None,
    output: str | None = None,
    seed: int = 0,
) -> torch.Tensor:
    r"""An input that the model scores highly as ``target_class`` (class-maximisation DeepDream).

    Gradient ascent on the input image :math:`x` with the weights frozen, maximising the
    target logit minus an L2 penalty,

    .. math:: \max_x\; z_c(x) - \lambda_2 \lVert x \rVert_2^2 / n,

    with three regularisers that keep the image natural-looking rather than adversarial noise:

    * **jitter** — each step scores a copy rolled by a random offset of up to ``jitter`` pixels,
      so the image cannot rely on single-pixel patterns;
    * **blur** — a Gaussian blur (``blur_sigma`` pixels) after every step removes high
      frequencies;
    * **octaves** — the image is first optimised at a coarse resolution (side divided by
      ``octave_scale`` per octave) and upsampled to the model's input size for scoring, then
      refined at the next finer scale, so large structures form before fine detail.

    Each step moves :math:`x` by ``lr`` times the gradient normalised by its mean absolute
    value, so ``lr`` is in input units per step, and clamps :math:`x` to ``value_range``.

    Args:
        model: maps a ``(1, C, H, W)`` batch to ``(1, K)`` logits (or a dict of them; see ``output``).
        target_class: the class whose logit is maximised.
        steps: ascent steps per octave.
        lr: step size in input units.
        jitter: maximum random shift in pixels (0 disables).
        blur_sigma: Gaussian blur per step in pixels (0 disables).
        octaves: number of scales (1: full resolution only).
        octave_scale: ratio between successive scales.
        input_shape: ``(C, H, W)``; default ``model.input_shape`` (as a :class:`~mtlkit.nn.ConvNet` has).
        value_range: ``(low, high)`` of valid inputs (e.g. normalised black and white), or ``None``.
        l2: weight of the L2 penalty.
        init: starting image ``(C, H, W)``; default small noise around the middle of ``value_range``.
        output: key of the logits when the model returns a dict (a :class:`~mtlkit.MultiTaskModel`).
        seed: seeds the initial noise and the jitter.

    Returns:
        The image, ``(C, H, W)``, in the model's input space.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
        ...                           torch.nn.Linear(4 * 10 * 10, 3))
        >>> start = torch.zeros(1, 12, 12)
        >>> img = deep_dream(net, 2, steps=5, octaves=1, input_shape=(1, 12, 12), init=start)
        >>> bool(net(img[None])[0, 2] > net(start[None])[0, 2])
        True
    """
    if steps < 1 or octaves < 1:
        raise ValueError(f"steps and octaves must be >= 1, got steps={steps}, octaves={octaves}")
    if octave_scale <= 1:
        raise ValueError(f"octave_scale must be > 1, got {octave_scale}")
    shape = tuple(input_shape) if input_shape is not None else tuple(getattr(model, "input_shape", ()))
    if len(shape) != 3:
        raise ValueError("give input_shape=(C, H, W): the model has no input_shape attribute")
    channels, height, width = (int(s) for s in shape)
    low, high = value_range if value_range is not None else (-math.inf, math.inf)
    generator = torch.Generator().manual_seed(seed)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def logits_of(batch: torch.Tensor) -> torch.Tensor:
        out = model(batch)
        if isinstance(out, Mapping):
            if output is None:
                raise ValueError(f"the model returns a dict {list(out)}; pass output=<key>")
            out = out[output]
        if out.dim() != 2 or not 0 <= target_class < out.shape[1]:
            raise ValueError(f"target_class {target_class} does not index logits of shape {tuple(out.shape)}")
        logits: torch.Tensor = out
        return logits

    if init is not None:
        if tuple(init.shape) != (channels, height, width):
            raise ValueError(f"init must have shape {(channels, height, width)}, got {tuple(init.shape)}")
        img = init.detach().to(device, torch.float32).unsqueeze(0).clone()
    else:
        middle = 0.5 * (low + high) if math.isfinite(low) and math.isfinite(high) else 0.0
        img = (middle + 0.1 * torch.randn(1, channels, height, width, generator=generator)).to(device)
    sizes = [
        (max(4, round(height / octave_scale**k)), max(4, round(width / octave_scale**k)))
        for k in reversed(range(octaves))
    ]
    was_training = model.training
    model.eval()
    try:
        img = F.interpolate(img, size=sizes[0], mode="bilinear", align_corners=False)
        for size in sizes:
            if tuple(img.shape[-2:]) != size:
                img = F.interpolate(img, size=size, mode="bilinear", align_corners=False)
            for _ in range(steps):
                img = img.detach().requires_grad_(True)
                shift = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist() if jitter else [0, 0]
                shifted = torch.roll(img, shifts=shift, dims=(2, 3))
                full = shifted
                if size != (height, width):
                    full = F.interpolate(shifted, size=(height, width), mode="bilinear", align_corners=False)
                score = logits_of(full)[0, target_class] - l2 * full.pow(2).mean()
                (grad,) = torch.autograd.grad(score, img)
                with torch.no_grad():
                    img = img + lr * grad / (grad.abs().mean() + 1e-12)
                    if blur_sigma > 0:
                        img = _gaussian_blur(img, blur_sigma)
                    img = img.clamp(low, high)
        img = F.interpolate(img.detach(), size=(height, width), mode="bilinear", align_corners=False)
    finally:
        model.train(was_training)
    return img.clamp(low, high)[0]


# --------------------------------------------------------------------------- t-SNE of hidden layers
@torch.no_grad()
def hidden_features(
    module: nn.Module, batches: Iterable[tuple[torch.Tensor, Mapping[str, torch.Tensor]]], task: str
) -> tuple[np.ndarray, np.ndarray]:
    """``module(x)`` flattened, and the ``task`` targets, over all batches (eval mode).

    >>> feats, labels = hidden_features(nn.Linear(3, 2), [(torch.zeros(4, 3), {"y": torch.arange(4)})], "y")
    >>> feats.shape, labels.tolist()
    ((4, 2), [0, 1, 2, 3])
    """
    was_training = module.training
    module.eval()
    feats, labels = [], []
    for x, targets in batches:
        feats.append(module(x).flatten(1).float().cpu())
        labels.append(targets[task].cpu())
    module.train(was_training)
    if not feats:
        raise ValueError("no batches to take features from")
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def tsne_2d(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    r"""2-D t-SNE embedding (van der Maaten & Hinton, 2008) of ``(N, D)`` features.

    Minimises :math:`\mathrm{KL}(P \,\|\, Q)` between Gaussian affinities :math:`P` of the
    features and Student-t affinities :math:`Q` of the map; PCA initialisation and a fixed
    seed make the map reproducible.

    >>> tsne_2d(np.random.default_rng(0).normal(size=(40, 5)), perplexity=5).shape
    (40, 2)
    """
    from sklearn.manifold import TSNE  # noqa: PLC0415 - scikit-learn is the optional [viz] extra

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) < 3:
        raise ValueError(f"need (N >= 3, D) features, got shape {features.shape}")
    perplexity = min(perplexity, (len(features) - 1) / 3)
    embedded: np.ndarray = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    return embedded


def plot_tsne_panels(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    title: str | None = None,
) -> Figure:
    """One t-SNE scatter per panel (``title -> (features, labels)``), coloured by class.

    Each panel is embedded on its own (t-SNE axes are not comparable across maps); compare the
    separation of the class clusters, as Fig. 6 of the pooled-MNIST seed does.

    >>> rng = np.random.default_rng(0)
    >>> panel = (rng.normal(size=(30, 4)), np.arange(30) % 3)
    >>> fig = plot_tsne_panels({"without MTL": panel, "with MTL": panel})
    >>> len(fig.axes)
    2
    """
    if not panels:
        raise ValueError("no panels to plot")
    from matplotlib import colormaps  # noqa: PLC0415 - matplotlib is the optional [viz] extra

    fig = _new_figure(4.2 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    cmap = colormaps["tab10"]
    for ax, (name, (features, panel_labels)) in zip(axes, panels.items(), strict=True):
        points = tsne_2d(features, seed=seed)
        labels = np.asarray(panel_labels)
        for c in np.unique(labels):
            keep = labels == c
            label = class_names[int(c)] if class_names is not None else str(int(c))
            ax.scatter(points[keep, 0], points[keep, 1], s=4, color=cmap(int(c) % 10), label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
