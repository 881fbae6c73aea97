"""Neural-network modules: trunks, heads, multi-task models, factorised layers."""

from mtlkit.nn._activation import make_activation
from mtlkit.nn._all_conv import all_conv_specs, all_conv_trunk
from mtlkit.nn._convnet import AvgPool, Conv, ConvNet, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool
from mtlkit.nn._dmtrl_net import DMTRLNet, PerTask, leaf_layers
from mtlkit.nn._factorized_base import FactorizedLayer
from mtlkit.nn._factorized_conv import FactorizedConv2d
from mtlkit.nn._factorized_linear import FactorizedLinear
from mtlkit.nn._heads import LinearHead, MLPHead
from mtlkit.nn._label_reuse import LabelReuseHead
from mtlkit.nn._lenet import lenet_head, lenet_trunk
from mtlkit.nn._mlp import MLP
from mtlkit.nn._module import MultiTaskModule
from mtlkit.nn._multitask import MultiTaskModel, SingleTaskModels
from mtlkit.nn._ud_mtl import UserDefinedSharing, count_parameters

__all__ = [
    "MLP",
    "AvgPool",
    "Conv",
    "ConvNet",
    "DMTRLNet",
    "Dense",
    "Dropout",
    "FactorizedConv2d",
    "FactorizedLayer",
    "FactorizedLinear",
    "Flatten",
    "GlobalAvgPool",
    "LabelReuseHead",
    "LinearHead",
    "MLPHead",
    "MaxPool",
    "MultiTaskModel",
    "MultiTaskModule",
    "PerTask",
    "SingleTaskModels",
    "UserDefinedSharing",
    "all_conv_specs",
    "all_conv_trunk",
    "count_parameters",
    "leaf_layers",
    "lenet_head",
    "lenet_trunk",
    "make_activation",
]
