"""The coursework's architectures, each written as an mtlkit ``ConvNet`` spec.

Shared by the Task 3–6 scripts and the tests. Pixel inputs are ``(1, 28, 28)``; outputs are raw
logits (the softmax lives in the cross-entropy loss).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mtlkit import MLPHead, MultiTaskModel
from mtlkit.nn import Conv, ConvNet, Dense, Flatten, MaxPool

IMAGE_SHAPE = (1, 28, 28)

# Task 3.1: [784, 1000, 1000, 10].
MLP_31 = (1000, 1000)
# Task 3.2: our choice of 3, 4, 5 and 7 hidden layers (the brief leaves widths open); widths taper
# so that parameter counts stay within 0.4-1.3 M, around the 1.8 M of the 3.1 net.
MLP_VARIANTS: dict[str, tuple[int, ...]] = {
    "MLP 3.1 [1000,1000]": MLP_31,
    "MLP 3 hidden [800,400,200]": (800, 400, 200),
    "MLP 4 hidden [512,512,256,128]": (512, 512, 256, 128),
    "MLP 5 hidden [512,256,256,128,64]": (512, 256, 256, 128, 64),
    "MLP 7 hidden [512,512,256,256,128,128,64]": (512, 512, 256, 256, 128, 128, 64),
}

# Task 4: (channels, kernel, strides). 4.1 is [32, 64, 128], 4x4 kernels, strides 1, 2, 2 with
# 'valid' padding (Keras' default); the four others vary depth and width.
CNN_41 = ((32, 64, 128), 4, (1, 2, 2))
CNN_41_NAME = "CNN 4.1 [32,64,128]"
CNN_VARIANTS: dict[str, tuple[tuple[int, ...], int, tuple[int, ...]]] = {
    CNN_41_NAME: CNN_41,
    "CNN shallow [32,64]": ((32, 64), 4, (1, 2)),
    "CNN narrow [16,32,64]": ((16, 32, 64), 4, (1, 2, 2)),
    "CNN wide [48,96,192]": ((48, 96, 192), 4, (1, 2, 2)),
    "CNN deep [32,64,128,256]": ((32, 64, 128, 256), 4, (1, 2, 2, 1)),
}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable weights and biases."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def mlp(hidden: Sequence[int], n_classes: int = 10) -> ConvNet:
    """Fully-connected ReLU net on the flattened image: ``[784, *hidden, n_classes]``."""
    return ConvNet(IMAGE_SHAPE, [Flatten(), *(Dense(w) for w in hidden), Dense(n_classes, activation=None)])


def cnn(channels: Sequence[int], kernel: int, strides: Sequence[int], n_classes: int = 10) -> ConvNet:
    """Task-4 style CNN: ReLU convolutions (no padding), flatten, one linear layer to the classes."""
    if len(channels) != len(strides):
        raise ValueError(f"{len(channels)} conv layers but {len(strides)} strides")
    convs = [Conv(c, kernel, stride=s) for c, s in zip(channels, strides, strict=True)]
    return ConvNet(IMAGE_SHAPE, [*convs, Flatten(), Dense(n_classes, activation=None)])


def task41_cnn() -> ConvNet:
    """The Task-4.1 network: [32, 64, 128] 4x4 convolutions, strides 1, 2, 2, flatten, FC 10."""
    return cnn(*CNN_41)


def conv_layers(net: ConvNet) -> dict[str, nn.Module]:
    """``{"conv1": …}``: the (convolution + ReLU) entries of a ConvNet, for activation plots."""
    found = [layer for spec, layer in zip(net.specs, net.layers, strict=True) if isinstance(spec, Conv)]
    return {f"conv{i + 1}": layer for i, layer in enumerate(found)}


# Task 6: [32, 64, 128] 3x3 convolutions, stride 1, 2x2 max-pooling after conv 1 and 2. 'same'
# padding keeps 28 -> 14 -> 7, so the shared dense layer of 3136 = 7·7·64 units sits on a
# 7·7·128 = 6272 feature map.
def fashion_backbone() -> list:
    return [
        Conv(32, 3, padding=1),
        MaxPool(2),
        Conv(64, 3, padding=1),
        MaxPool(2),
        Conv(128, 3, padding=1),
        Flatten(),
    ]


SHARED_DENSE = 3136
# The brief says only "task-specific branches (dense layers)": we give each branch one hidden
# ReLU layer of 256 units before its output layer.
BRANCH_HIDDEN = (256,)


def fashion_single_task(n_classes: int) -> ConvNet:
    """Task 6.1: the backbone, then one linear layer to the classes (as in Task 4)."""
    return ConvNet(IMAGE_SHAPE, [*fashion_backbone(), Dense(n_classes, activation=None)])


def fashion_wide_single_task(n_classes: int, branch_hidden: Sequence[int] = ()) -> ConvNet:
    """Single-task CNN with the MTL trunk's width: backbone, the shared dense 3136, then the classes.

    The Task-6.1 CNN widened by the dense layer the MTL network shares (about 19.7 M parameters
    instead of 155 K). With ``branch_hidden=BRANCH_HIDDEN`` it is, layer for layer and (from the
    same seed) weight for weight, the Task-6.2 network with only its first branch; the
    :math:`\\lambda = 1` MTL run trains exactly that network, so the Task-6 script does not train
    it twice.
    """
    branch = [Dense(w) for w in branch_hidden]
    return ConvNet(IMAGE_SHAPE, [*fashion_backbone(), Dense(SHARED_DENSE), *branch, Dense(n_classes, activation=None)])


def fashion_multitask(branch_hidden: Sequence[int] = BRANCH_HIDDEN) -> MultiTaskModel:
    """Task 6.2: shared backbone + shared dense 3136, an ``item`` (10) and a ``group`` (3) branch."""
    trunk = ConvNet(IMAGE_SHAPE, [*fashion_backbone(), Dense(SHARED_DENSE)])
    heads = {
        "item": MLPHead(SHARED_DENSE, branch_hidden, 10),
        "group": MLPHead(SHARED_DENSE, branch_hidden, 3),
    }
    return MultiTaskModel(trunk, heads)
