"""How task losses become one update: the Trainer's ``weighting=`` slot and its methods.

Every method is a :class:`TaskWeighting` (an ``nn.Module``): fixed weights and schedules
(:class:`FixedWeights`, :class:`Scheduled`), plain summing (:class:`EqualWeighting`), and the
adaptive loss weightings uncertainty weighting, DWA, RLW, GradNorm, FAMO and DB-MTL, and the
gradient aggregators (:class:`GradientAggregator`: MGDA-UB, PCGrad, CAGrad, Nash-MTL, IMTL-G,
Aligned-MTL, UPGrad), which turn the per-task gradients of the shared parameters into the update. A
schedule composes with any of them: ``Scheduled(ExponentialSchedule(...), UncertaintyWeighting(tasks))``.
"""

from mtlkit.balancing._aggregator import GradientAggregator
from mtlkit.balancing._aligned import AlignedMTL
from mtlkit.balancing._base import TaskWeighting
from mtlkit.balancing._cagrad import CAGrad
from mtlkit.balancing._dbmtl import DBMTL
from mtlkit.balancing._dwa import DynamicWeightAverage
from mtlkit.balancing._equal import EqualWeighting
from mtlkit.balancing._famo import FAMO
from mtlkit.balancing._gradnorm import GradNorm
from mtlkit.balancing._imtl import IMTLG
from mtlkit.balancing._mgda import MGDA
from mtlkit.balancing._nash import NashMTL
from mtlkit.balancing._pcgrad import PCGrad
from mtlkit.balancing._rlw import RandomLossWeighting
from mtlkit.balancing._scheduled import FixedWeights, Scheduled
from mtlkit.balancing._uncertainty import UncertaintyWeighting
from mtlkit.balancing._upgrad import UPGrad

__all__ = [
    "DBMTL",
    "FAMO",
    "DynamicWeightAverage",
    "EqualWeighting",
    "FixedWeights",
    "GradNorm",
    "RandomLossWeighting",
    "Scheduled",
    "TaskWeighting",
    "UncertaintyWeighting",
    "GradientAggregator",
    "MGDA",
    "PCGrad",
    "CAGrad",
    "NashMTL",
    "IMTLG",
    "AlignedMTL",
    "UPGrad",
]
