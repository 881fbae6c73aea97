"""mtlkit: multi-task-learning building blocks for PyTorch.

Build a model from a trunk and per-task heads, weight the task losses, and train::

    model = MultiTaskModel(trunk, {"item": LinearHead(64, 10), "group": LinearHead(64, 3)})
    trainer = Trainer(model, optimizer, {"item": F.cross_entropy, "group": F.cross_entropy},
                      weights={"item": lam, "group": 1 - lam})
    trainer.fit(train_batches, epochs=10, val_data=test_batches)
"""

from mtlkit._version import __version__
from mtlkit.auxiliary import DenoisingAutoencoders, WithReconstruction
from mtlkit.balancing import (
    DBMTL,
    FAMO,
    IMTLG,
    MGDA,
    AlignedMTL,
    CAGrad,
    DynamicWeightAverage,
    EqualWeighting,
    FixedWeights,
    GradientAggregator,
    GradNorm,
    NashMTL,
    PCGrad,
    RandomLossWeighting,
    Scheduled,
    TaskWeighting,
    UncertaintyWeighting,
    UPGrad,
)
from mtlkit.checkpoint import load_checkpoint, save_checkpoint
from mtlkit.factorized import (
    CP,
    LAF,
    TT,
    ParameterBudget,
    ProportionalBudget,
    Ranks,
    RelativeError,
    SpectralError,
    Tucker,
)
from mtlkit.label_space import PooledLabelSpace
from mtlkit.losses import hinge_loss
from mtlkit.metrics import accuracy, error_rate
from mtlkit.nn import (
    MLP,
    ConvNet,
    FactorizedConv2d,
    FactorizedLinear,
    LabelReuseHead,
    LinearHead,
    MLPHead,
    MultiTaskModel,
    MultiTaskModule,
    SingleTaskModels,
    UserDefinedSharing,
    count_parameters,
)
from mtlkit.noise import GaussianNoise, MaskingNoise
from mtlkit.schedules import (
    AbridgedLinearSchedule,
    ConstantWeights,
    ExponentialSchedule,
    LinearSchedule,
    StairsSchedule,
    TransitionSchedule,
    WeightSchedule,
    schedule_from_name,
)
from mtlkit.seeding import seed_everything
from mtlkit.sharing import sharing_report, sharing_strength
from mtlkit.train import NonFiniteLossError, Phase, Trainer
from mtlkit.transfer import hand_over_pooled, transfer_parameters
from mtlkit.weighting import weighted_sum

__all__ = [
    "DBMTL",
    "FAMO",
    "DynamicWeightAverage",
    "EqualWeighting",
    "FixedWeights",
    "GradNorm",
    "MultiTaskModule",
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
    "CP",
    "LAF",
    "TT",
    "ParameterBudget",
    "ProportionalBudget",
    "Ranks",
    "RelativeError",
    "SpectralError",
    "Tucker",
    "MLP",
    "AbridgedLinearSchedule",
    "DenoisingAutoencoders",
    "ExponentialSchedule",
    "FactorizedConv2d",
    "FactorizedLinear",
    "GaussianNoise",
    "LinearSchedule",
    "MaskingNoise",
    "StairsSchedule",
    "UserDefinedSharing",
    "count_parameters",
    "sharing_report",
    "sharing_strength",
    "TransitionSchedule",
    "WithReconstruction",
    "schedule_from_name",
    "ConstantWeights",
    "ConvNet",
    "LabelReuseHead",
    "LinearHead",
    "MLPHead",
    "MultiTaskModel",
    "NonFiniteLossError",
    "Phase",
    "PooledLabelSpace",
    "SingleTaskModels",
    "Trainer",
    "WeightSchedule",
    "__version__",
    "accuracy",
    "error_rate",
    "hand_over_pooled",
    "hinge_loss",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "transfer_parameters",
    "weighted_sum",
]
