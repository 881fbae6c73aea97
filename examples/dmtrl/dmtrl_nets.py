"""The three architectures of the DMTRL experiments, as layer factories for UD-MTL / STL towers.

Each function returns the network bottom-up as *parametrised blocks* (a weight layer with the
activation / pooling after it), so ``UserDefinedSharing(blocks, N, tasks)`` hard-shares exactly
the first ``N`` parametrised layers (the paper's UD-MTL search) and ``N = 0`` is STL; the STL
towers are then factorised block by block into a :class:`mtlkit.nn.DMTRLNet`.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from mtlkit.nn._ud_mtl import LayerSpec


def _pooled(size: int, kernel: int, pool: int = 2, stride: int | None = None, padding: int = 0) -> int:
    """Spatial size after a 'valid'/padded convolution and a floor-mode max-pool."""
    size = size + 2 * padding - kernel + 1
    stride = stride or pool
    return (size - pool) // stride + 1


def lenet(width: float = 1.0, hidden: int | None = None) -> list[LayerSpec]:
    """Sec. 4.1's modified LeNet: conv 32@5×5 → pool → conv 64@4×4 → pool → FC 512 → FC 1, ReLU.

    ``width`` scales the three hidden widths (1.0 is the paper's network); ``hidden`` overrides the
    FC1 width (App. B's UD-MTL-Large "adds hidden neurons"); input 1×28×28.
    """
    c1, c2 = max(1, round(32 * width)), max(1, round(64 * width))
    hidden = hidden or max(1, round(512 * width))
    side = _pooled(_pooled(28, 5), 4)  # 28 → 24 → 12 → 9 → 4
    return [
        lambda: nn.Sequential(nn.Conv2d(1, c1, 5), nn.ReLU(), nn.MaxPool2d(2)),
        lambda: nn.Sequential(nn.Conv2d(c1, c2, 4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()),
        lambda: nn.Sequential(nn.Linear(c2 * side * side, hidden), nn.ReLU()),
        lambda: nn.Linear(hidden, 1),
    ]


def omniglot_cnn(classes: Mapping[str, int], image_size: int = 105) -> list[LayerSpec]:
    """Sec. 4.3's CNN: conv 8@5×5, 12@3×3, 16@3×3 (each + 2×2 max-pool) → FC 64 → FC per alphabet, tanh."""
    side = _pooled(_pooled(_pooled(image_size, 5), 3), 3)
    if side < 1:
        raise ValueError(f"image size {image_size} is too small for the Omniglot CNN")
    return [
        lambda: nn.Sequential(nn.Conv2d(1, 8, 5), nn.Tanh(), nn.MaxPool2d(2)),
        lambda: nn.Sequential(nn.Conv2d(8, 12, 3), nn.Tanh(), nn.MaxPool2d(2)),
        lambda: nn.Sequential(nn.Conv2d(12, 16, 3), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten()),
        lambda: nn.Sequential(nn.Linear(16 * side * side, 64), nn.Tanh()),
        {task: (lambda n=n: nn.Linear(64, n)) for task, n in classes.items()},
    ]


def levi_hassner(
    classes: Mapping[str, int], widths: tuple[int, int, int, int] = (96, 256, 384, 512), image_size: int = 64
) -> list[LayerSpec]:
    """Levi & Hassner (2015)'s age/gender CNN: 3 conv + 2 FC (ReLU, dropout 0.5) + FC per task.

    conv c1@7×7 stride 4 → pool 3/2 → LRN → conv c2@5×5 pad 2 → pool 3/2 → LRN → conv c3@3×3 pad 1 →
    pool 3/2 → FC f → FC f → output; ``widths = (c1, c2, c3, f)`` (paper: 96, 256, 384, 512).
    """
    c1, c2, c3, hidden = widths
    side = (image_size - 7) // 4 + 1
    side = (side - 3) // 2 + 1
    side = (side - 3) // 2 + 1
    side = (side - 3) // 2 + 1
    if side < 1:
        raise ValueError(f"image size {image_size} is too small for the Levi-Hassner CNN")
    return [
        lambda: nn.Sequential(nn.Conv2d(3, c1, 7, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5)),
        lambda: nn.Sequential(nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5)),
        lambda: nn.Sequential(nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten()),
        lambda: nn.Sequential(nn.Linear(c3 * side * side, hidden), nn.ReLU(), nn.Dropout(0.5)),
        lambda: nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5)),
        {task: (lambda n=n: nn.Linear(hidden, n)) for task, n in classes.items()},
    ]
