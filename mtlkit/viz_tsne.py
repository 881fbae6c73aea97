"""t-SNE maps of hidden representations, side by side (e.g. with and without multi-task learning).

Needs scikit-learn and matplotlib (the ``viz`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["hidden_features", "plot_tsne_panels", "tsne_2d"]


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
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) < 3:
        raise ValueError(f"need (N >= 3, D) features, got shape {features.shape}")
    perplexity = min(perplexity, (len(features) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def plot_tsne_panels(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    title: str | None = None,
) -> None:
    """One t-SNE scatter per panel (``title -> (features, labels)``), coloured by class, saved as PNG.

    Each panel is embedded on its own (t-SNE axes are not comparable across maps); compare the
    separation of the class clusters, as the seed's Fig. 6 does.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("no panels to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, (features, labels)) in zip(axes[0], panels.items(), strict=True):
        points = tsne_2d(features, seed=seed)
        labels = np.asarray(labels)
        for c in np.unique(labels):
            keep = labels == c
            label = class_names[int(c)] if class_names is not None else str(int(c))
            ax.scatter(points[keep, 0], points[keep, 1], s=4, color=cmap(int(c) % 10), label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
