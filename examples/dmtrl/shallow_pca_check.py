"""Why STL, Evgeniou & Pontil and Argyriou et al. give the same test errors on PCA features (``dmtrl-shallow``).

Refits each reduced repeat's chosen models on its 50 PCA features and compares their sign predictions
with per-task least squares (ridge at α = 1e-9), and prints the smallest eigenvalue of XᵀX: when it is
far above every chosen regularisation strength, all three are least squares in effect.

    MTLKIT_DATA=… python examples/dmtrl/shallow_pca_check.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from dmtrl_shallow import BUDGETS, FRACTION, _scores, _targets

from mtlkit.data import mnist_one_vs_all, stratified_fraction
from mtlkit.shallow import ConvexMTFL, LinearMTLClassifier, RegularizedMTL, SingleTaskRidge, pca_features

RESULTS = Path(__file__).resolve().parents[2] / "results" / "dmtrl_shallow.json"
BUILD = {"STL": SingleTaskRidge, "Evgeniou & Pontil (2004)": RegularizedMTL, "Argyriou et al. (2008)": ConvexMTFL}


def main() -> None:
    budget = BUDGETS["reduced"]
    rows = {r["setting"]: r for r in json.loads(RESULTS.read_text())["rows"]}
    test = mnist_one_vs_all("test")
    test = test.subset(stratified_fraction(test.meta["label"].numpy(), budget.n_test / len(test), seed=0))
    for seed in range(budget.repeats):
        fit = mnist_one_vs_all("train", FRACTION, seed=seed)
        x_fit, x_test = pca_features(fit.images.double() / 255, test.images.double() / 255, budget.n_pca)
        scale = x_fit.std()
        x_fit, x_test = x_fit / scale, x_test / scale
        y_fit, y_test = _targets(fit), _targets(test)
        models: dict[str, LinearMTLClassifier] = {"least squares": SingleTaskRidge(alpha=1e-9)}
        models |= {name: build(**rows[f"{name} / PCA feature"]["chosen"][seed]) for name, build in BUILD.items()}
        signs = {name: np.sign(m.fit(x_fit, y_fit).decision_function(x_test)) for name, m in models.items()}
        smallest = float(np.linalg.eigvalsh(x_fit.T @ x_fit).min())
        print(f"repeat {seed}: {len(fit)} images, smallest eigenvalue of XᵀX {smallest:.1f}")
        for name, model in models.items():
            differ = float(np.mean(signs[name] != signs["least squares"]))
            print(f"  {name}: test error {_scores(model, x_test, y_test)[0]:.3f} %, "
                  f"predictions differing from least squares {100 * differ:.3f} %")  # fmt: skip


if __name__ == "__main__":
    main()
