"""Neural-network modules: trunks, heads, multi-task models, factorised layers."""

from mtlkit.nn._factorized_base import FactorizedLayer
from mtlkit.nn._factorized_conv import FactorizedConv2d
from mtlkit.nn._factorized_linear import FactorizedLinear

__all__ = ["FactorizedLayer", "FactorizedConv2d", "FactorizedLinear"]

from mtlkit.nn._ud_mtl import UserDefinedSharing, count_parameters

__all__ += ["UserDefinedSharing", "count_parameters"]
