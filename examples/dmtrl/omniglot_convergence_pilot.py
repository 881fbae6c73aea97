"""Pilot that sized ``dmtrl-omniglot``'s reduced budget: how many epochs STL needs to pass "training converged".

Trains one STL net (seed 0, the reduced mode's data and optimiser, constant learning rate) for
``epochs`` epochs and prints, for truncations of its loss curve, the gate's quantity: the change of
the summed training loss over the last 10 % of epochs relative to the uniform predictor's loss
(:func:`dmtrl_common.uniform_loss`), plus the final test error. Truncations of one constant-rate
run stand for shorter runs. One thread; about 80 CPU-s for 120 epochs at 10 %, 130 for 40 at 50 %.

    MTLKIT_DATA=… OMP_NUM_THREADS=1 python examples/dmtrl/omniglot_convergence_pilot.py 0.1 120
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from dmtrl_common import build_seeded, train, uniform_loss
from dmtrl_nets import omniglot_cnn
from dmtrl_omniglot import BUDGETS, NAME, _evaluate, _load

from mtlkit.data import PerTaskBatches
from mtlkit.experiments import RunContext
from mtlkit.gates import last_fraction_change
from mtlkit.nn import UserDefinedSharing

TRUNCATIONS = (10, 18, 30, 45, 60, 90, 120, 180, 240)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fraction", type=float, help="training fraction, e.g. 0.1")
    parser.add_argument("epochs", type=int, help="epochs of the one long run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    budget = BUDGETS["reduced"]
    scratch = Path(tempfile.mkdtemp(prefix="omniglot_pilot_"))
    ctx = RunContext(NAME, None, "reduced", scratch / "results", scratch / "runs", progress=False)
    train_sets, test_sets = _load(ctx, budget, args.fraction, 0)
    classes = {a: ds.num_classes(a) for a, ds in train_sets.items()}
    model = build_seeded(0, lambda: UserDefinedSharing(omniglot_cnn(classes, budget.image_size), 0, list(classes)))
    start = time.process_time()
    history = train(ctx, model, PerTaskBatches(train_sets, budget.batch_size, seed=0),
                    {a: F.cross_entropy for a in classes}, args.epochs, budget.lr, scratch / "runs", 0)  # fmt: skip
    curve = [sum(v for k, v in r.items() if k.startswith("train/") and k.endswith("/loss")) for r in history]
    reference = uniform_loss(classes)
    out = {
        "fraction": args.fraction, "epochs": args.epochs, "cpu_s": round(time.process_time() - start),
        "uniform_loss": round(reference, 3), "test_error_pct": round(_evaluate(model, test_sets)["error_pct"], 2),
        "change_vs_uniform_after": {n: round(last_fraction_change(curve[:n], reference=reference), 4)
                                    for n in TRUNCATIONS if n <= len(curve)},
        "curve": [round(c, 3) for c in curve],
    }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
