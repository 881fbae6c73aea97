"""Table 1 of Belharbi et al. (2016): test-error differences to the baseline, in points of %.

Negative means better than the baseline (the paper's convention, which we keep:
``difference = error(schedule) - error(baseline)``). ``None`` in ``UNLABELED`` is ``u = 50 000 - l``.
"""

from __future__ import annotations

#: The paper's grid of unlabeled-set sizes (rows of Table 1); ``None`` = ``50 000 - l``.
UNLABELED = (0, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, None)
LABELED = (100, 1_000, 10_000)

#: Table 1a baselines (NN1), test error in %.
BASELINE_1A = {100: 31.0, 1_000: 12.85, 10_000: 9.08}

#: Table 1a: (l, schedule) -> differences over ``UNLABELED``.
TABLE_1A = {
    (100, "stairs100"): (0.03, -0.1, -0.17, -0.16, -0.28, -0.28, -0.46, -0.19),
    (100, "lin100"): (0.03, -0.87, -1.35, -1.69, -2.21, -1.82, -2.39, -1.89),
    (100, "lin"): (1.32, -0.19, -1.03, -1.78, -2.03, -2.26, -2.62, -2.03),
    (100, "exp40"): (0.03, -0.85, -1.46, -1.91, -2.21, -2.42, -2.44, -2.44),
    (1_000, "stairs100"): (0.03, 0.09, 0.009, 0.05, 0.0, -0.02, -0.049, -0.06),
    (1_000, "lin100"): (0.0, -0.71, -0.98, -1.43, -1.6, -1.83, -1.63, -1.68),
    (1_000, "lin"): (1.5, 0.33, -0.23, -0.95, -1.12, -1.46, -1.37, -1.56),
    (1_000, "exp40"): (0.05, -0.73, -0.95, -1.44, -1.44, -1.78, -1.7, -1.75),
    (10_000, "stairs100"): (0.03, 0.03, 0.03, 0.03, 0.01, 0.01, 0.01, 0.01),
    (10_000, "lin100"): (0.01, -0.08, -0.2, -0.26, -0.5, -0.63, -0.63, -0.63),
    (10_000, "lin"): (0.95, 0.85, 0.74, 0.31, -0.1, -0.44, -0.63, -0.63),
    (10_000, "exp40"): (-0.04, -0.08, -0.21, -0.3, -0.51, -0.75, -0.56, -0.56),
}

#: Table 1b baselines, (network, l) -> test error in %.
BASELINE_1B = {
    ("NN2", 100): 31.48,
    ("NN3", 100): 33.58,
    ("NN4", 100): 30.53,
    ("NN2", 1_000): 12.32,
    ("NN3", 1_000): 11.96,
    ("NN4", 1_000): 12.54,
    ("NN2", 10_000): 5.62,
    ("NN3", 10_000): 5.69,
    ("NN4", 10_000): 5.5,
}

#: Table 1b (schedule exp40): (network, l) -> differences over ``UNLABELED``.
TABLE_1B = {
    ("NN2", 100): (0.01, -1.05, -2.03, -2.32, -2.26, -2.4, -2.12, -1.99),
    ("NN3", 100): (-0.01, -0.83, -1.35, -1.71, -1.29, -0.78, -1.17, -1.23),
    ("NN4", 100): (0.03, -0.92, -1.17, -1.31, -0.72, -0.82, -1.65, -0.88),
    ("NN2", 1_000): (0.02, -0.55, -0.78, -1.15, -1.14, -1.25, -1.08, -1.23),
    ("NN3", 1_000): (-0.08, -0.58, -0.77, -1.23, -1.29, -1.48, -1.3, -1.3),
    ("NN4", 1_000): (-0.03, -0.8, -1.18, -1.56, -1.76, -1.88, -1.92, -1.85),
    ("NN2", 10_000): (-0.11, -0.2, -0.4, -0.54, -0.75, -0.81, -0.81, -0.81),
    ("NN3", 10_000): (-0.03, -0.07, -0.01, -0.18, -0.22, -0.41, -0.42, -0.42),
    ("NN4", 10_000): (0.08, 0.12, 0.04, -0.04, -0.24, -0.08, -0.55, -0.55),
}


def paper_difference(network: str, labeled: int, unlabeled: int, schedule: str) -> float | None:
    """The paper's difference for one cell, or ``None`` where Table 1 has none."""
    key = None if unlabeled == 50_000 - labeled else unlabeled
    if key not in UNLABELED:
        return None
    column = (
        TABLE_1A.get((labeled, schedule))
        if network == "NN1"
        else (TABLE_1B.get((network, labeled)) if schedule == "exp40" else None)
    )
    return None if column is None else column[UNLABELED.index(key)]


def paper_baseline(network: str, labeled: int) -> float | None:
    """The paper's baseline test error (%) of ``network`` trained on ``labeled`` examples."""
    return BASELINE_1A.get(labeled) if network == "NN1" else BASELINE_1B.get((network, labeled))
