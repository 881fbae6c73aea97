"""Trains the toy problem and saves the final parameters; run alone or under torchrun."""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from helpers import LOSSES, ShuffledBatches, toy_model, toy_problem

from mtlkit import Trainer
from mtlkit.balancing import (
    DBMTL,
    FAMO,
    MGDA,
    DynamicWeightAverage,
    GradNorm,
    NashMTL,
    PCGrad,
    RandomLossWeighting,
    UncertaintyWeighting,
    UPGrad,
)

WEIGHTINGS = {
    "uw": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "rlw": RandomLossWeighting,
    "famo": FAMO,
    "mgda": MGDA,
    "mgda-rep": lambda tasks: MGDA(tasks, representation=True),
    "pcgrad": PCGrad,
    "nash-k": lambda tasks: NashMTL(tasks, update_every=2),
    "upgrad": UPGrad,
    "gradnorm": GradNorm,
    "dbmtl": DBMTL,
}

if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    x, y = toy_problem(128)
    model = toy_model(seed=0)
    precision = sys.argv[2] if len(sys.argv) > 2 else "fp32"
    weighting = WEIGHTINGS[sys.argv[3]](tuple(LOSSES)) if len(sys.argv) > 3 else None
    parameters = [*model.parameters(), *(weighting.parameters() if weighting is not None else [])]
    trainer = Trainer(
        model,
        torch.optim.SGD(parameters, lr=0.2),
        LOSSES,
        progress=False,
        seed=1,
        precision=precision,
        weighting=weighting,
    )
    history = trainer.fit(ShuffledBatches(x, y, batch_size=32), epochs=3, val_data=ShuffledBatches(x, y, 64))
    if trainer.is_main_process:
        torch.save({"params": [p.detach() for p in model.parameters()], "acc": history[-1]["val/b/acc"]}, out)
    if torch.distributed.is_initialized():
        # gloo's threads can outlive the interpreter's teardown and abort the process ("terminate
        # called without an active exception"), failing a run that computed correctly. Destroying the
        # group made that rarer, not impossible (seen under load): the worker has written its result,
        # so it leaves without running the C++ static destructors at all.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
