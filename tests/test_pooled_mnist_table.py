"""Seed 000's Table 3 and claims in docs/hard_sharing.rst, generated from the results (docs/pooled_mnist_table.py)."""

import doctest
import sys
from pathlib import Path

import pytest
from helpers import example_modules

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import pooled_mnist_table as pmt  # noqa: E402 - docs tooling is not a package

from mtlkit.results import ResultsFile  # noqa: E402

FLAT = [2.0, 0.5, 0.1, 0.05, 0.049]
STILL_FALLING = [2.0, 1.8, 1.6, 1.4, 1.2]


@pytest.fixture(scope="module")
def example():
    with example_modules("pooled_mnist", "pooled_mnist") as (module,):
        yield module


def _accuracy(configuration: str, seed: int) -> float:
    """Single-task nets at 0.95; F+N+M's MNIST net +1 point every seed; the rest within seed noise."""
    if configuration.startswith("retrain F+N+M mnist"):
        return 0.96 + 0.001 * seed
    return 0.95 + 0.001 * ((seed * 7 + len(configuration)) % 3 - 1)


def _result(example, tmp_path, unconverged: str | None = None) -> dict:
    b = example.BUDGETS["reduced"]
    results = ResultsFile(tmp_path / "pooled_mnist.json", experiment="pooled_mnist", seed_file="000_x.txt",
                          command="c", mode="reduced", seeds=list(b.seeds), gates=example.GATES)  # fmt: skip
    results.plan(example.configurations(b))
    runs = {}
    for configuration in example.configurations(b):
        seed = int(configuration.rsplit("seed", 1)[1])
        curve = STILL_FALLING if configuration == unconverged else FLAT
        runs[configuration] = {"acc": _accuracy(configuration, seed), "loss": 0.2, "cpu_s": 1.0, "epochs": 5,
                               "steps": 50, "train_loss": curve, "stage2_train_loss_fall": 0.1}  # fmt: skip
        results.record_done(configuration, 1.0)
    example.write_rows(results, b, runs)
    return results.data


def test_a_gain_beyond_2_se_is_reproduced_and_the_others_are_within(example, tmp_path):
    text = pmt.section(_result(example, tmp_path))
    assert "66 of 66 networks trained" in text
    assert text.count("gain beyond 2 SE") == 2  # F+N+M → MNIST, against single-task and against the control
    assert "the paper's gain is reproduced (positive beyond 2 SE) in 1, and is also beyond 2 SE of the" in text
    assert "Of the 9 judged cells (of 9)" in text and "uninformative" not in text


def test_an_unconverged_network_voids_only_the_rows_built_on_it(example, tmp_path):
    text = pmt.section(_result(example, tmp_path, unconverged="retrain M+N notmnist seed1"))
    # M+N's notMNIST cell and its two claims are uninformative; the other eight cells are judged.
    assert "Of the 8 judged cells (of 9)" in text
    assert text.count("uninformative (training converged") == 2
    assert "uninformative: training converged" in text  # its Table 3 cell


def test_the_tables_constants_are_the_examples(example):
    assert pmt.DATASETS.keys() == set(example.DATASETS) and pmt.SHORT == example.SHORT
    assert ("single-task", *example.COLUMNS[1:], *example.CONTROLS.values()) == pmt.NETWORKS
    assert example.COLUMNS[1:] == pmt.POOLS


def test_doctests_of_the_table_and_the_example(example):
    for module in (pmt, example):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_cells_wait_for_every_seed():
    assert pmt.verdict(None, planned=3, failed=[]) == "pending (n=0)"
    assert pmt.verdict({"n": 3, "ours": -1.0, "beyond_2_standard_errors": True}, 3, []) == "loss beyond 2 SE"
    assert pmt.verdict({"n": 3, "ours": 1.0, "beyond_2_standard_errors": False}, 3, ["g"]) == "uninformative (g)"
    assert pmt.verdict({"n": 1, "ours": 1.0, "beyond_2_standard_errors": None}, 1, []).startswith("one seed")
