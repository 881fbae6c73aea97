"""Seed 003's conclusions in docs/hard_sharing.rst, claim by claim, from the results (docs/cifar_claims_table.py)."""

import doctest
import sys
from pathlib import Path

import pytest
from helpers import example_modules

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import cifar_claims_table as cct  # noqa: E402 - docs tooling is not a package


@pytest.fixture(scope="module")
def example():
    with example_modules("cifar100_coarse_fine", "cifar100_coarse_fine") as (module,):
        yield module


def _rows(example, gains: dict[tuple[str, str], tuple[float, float]], n: int = 3) -> list[dict]:
    """One comparison row per claim of the example; ``gains`` overrides (mean, SE) of some, default 0 ± 1."""
    rows = []
    for claim, arch, reference, quantity, task in example.CLAIMS:
        metric = f"gain_test_acc_{task}" if quantity == "acc" else f"change_generalisation_gap_{task}"
        mean, se = gains.get((arch, metric), (0.0, 1.0))
        rows.append({"setting": f"{arch} − {reference}", "metric": metric, "ours": mean, "n": n, "claim": claim,
                     "standard_error": se, "beyond_2_standard_errors": abs(mean) > 2 * se, "paper": None})  # fmt: skip
    return rows


def _result(rows: list[dict], checks: list[dict] | None = None) -> dict:
    return {
        "protocol": "p",
        "mode": "reduced",
        "seeds": [0, 1, 2],
        "rows": rows,
        "checks": checks or [],
        "command": "c",
    }


def test_every_claim_of_the_example_has_a_direction(example):
    for claim, _, _, quantity, task in example.CLAIMS:
        metric = f"gain_test_acc_{task}" if quantity == "acc" else f"change_generalisation_gap_{task}"
        assert cct.reading(claim, {"metric": metric, "ours": 1.0, "beyond_2_standard_errors": True}) in (1, -1)


def test_claims_are_reproduced_contradicted_or_not_shown(example):
    hurt = {("Reuse Coarse", "gain_test_acc_coarse"): (-2.0, 0.5),
            ("Shared Conv & Reuse Coarse", "gain_test_acc_coarse"): (-1.5, 0.5)}  # fmt: skip
    improve = {(arch, "gain_test_acc_fine"): (1.0, 0.2) for arch in
               ("Reuse Coarse", "Reuse Fine", "Shared Conv & Reuse Coarse", "Shared Conv & Reuse Fine")}  # fmt: skip
    improve[("Reuse Fine", "gain_test_acc_fine")] = (-1.0, 0.2)  # one comparison the other way
    text = cct.section(_result(_rows(example, {**hurt, **improve})))
    assert "* *reusing coarse hurts coarse*: **reproduced**" in text
    assert "* *concatenating improves fine*: **contradicted**" in text
    assert "* *shared conv regularises*: **not shown**" in text
    assert "+1.00 ± 0.20 (n=3) as stated" in text


def test_pending_and_gated_comparisons_are_not_judged(example):
    assert "**not judged**" in cct.section(_result(_rows(example, {}, n=2)))
    gate = {"name": "fine predictor trains", "passed": False, "settings": "Independent", "metric": "test_acc_fine",
            "marks": "*"}  # fmt: skip
    text = cct.section(_result(_rows(example, {}), [gate]))
    assert text.count("**not judged**") == 3 and "uninformative: fine predictor trains" in text
    assert "No verdict yet" in cct.section({**_result([]), "protocol": None})
    assert "list-table" not in cct.section(_result([]))  # no empty table for docutils to refuse


def test_doctests_of_the_table_and_the_example(example):
    for module in (cct, example):
        assert doctest.testmod(module).failed == 0, module.__name__
