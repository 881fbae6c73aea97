"""The DMTRL claim verdicts of docs/factorized.rst, generated from the results (docs/dmtrl_claims.py)."""

import doctest
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import dmtrl_claims as dc  # noqa: E402 - docs tooling is not a package

from mtlkit.gates import Gate  # noqa: E402

GATES = (
    Gate("STL trains", key="ours", below=40.0, settings="STL @*", metric="err"),
    Gate("training converged", key="train_loss_change_last10pct", below=0.02, metric="err"),
)
outcomes = st.lists(st.sampled_from([1, 0, -1, None]), min_size=1, max_size=4)


def _row(method: str, fraction: int, errors: list[float], change: float = 0.01) -> dict:
    return {"setting": f"{method} @ {fraction}%", "metric": "err", "ours": sum(errors) / len(errors),
            "ours_std": 0.1, "n": len(errors), "per_repeat": errors, "train_loss_change_last10pct": change}  # fmt: skip


def _rows() -> dc.Rows:
    rows = [
        _row("STL", 5, [20.0, 21.0, 22.0]),
        _row("A", 5, [18.0, 19.1, 19.9], change=0.05),  # not converged at 5 %: not judged there
        _row("STL", 20, [15.0, 16.0, 17.0]),
        _row("A", 20, [14.0, 15.1, 15.9]),  # 1.0 ± 0.06 better: beyond 2 SE
        _row("B", 20, [16.0, 15.0, 18.5]),  # +1, -1, +1.5: within 2 SE
    ]
    return dc.Rows({"rows": rows}, GATES)


def test_rows_by_method_and_fraction():
    rows = _rows()
    assert rows.fractions == [5.0, 20.0] and rows.methods == ["STL", "A", "B"]
    assert rows.row("A", 20.0, "err")["ours"] == 15.0 and rows.row("B", 5.0, "err") is None


def test_gates_are_read_per_fraction_on_the_method_and_on_stl_for_baseline_gates():
    rows = _rows()
    assert rows.failed(["A"], 5.0) == ["training converged (0.05)"]
    assert rows.failed(["A"], 20.0) == [] and rows.failed(["STL"], 5.0) == []
    failing_baseline = dc.Rows({"rows": [_row("STL", 5, [45.0, 46.0]), _row("A", 5, [10.0, 11.0])]}, GATES)
    assert failing_baseline.failed(["A"], 5.0) == ["STL trains (45.5)"]  # the mean is the gated value


def test_outcomes_of_a_comparison():
    rows = _rows()
    better = dc.Claim("s", "A beats STL", "A", "STL", "err", dc.EVERY)
    assert rows.outcome(better, 5.0)[0] is None and "not judged: training converged" in rows.outcome(better, 5.0)[1]
    sign, cell = rows.outcome(better, 20.0)
    assert sign == 1 and cell.startswith("+ −1.00")
    assert rows.outcome(dc.Claim("s", "", "B", "STL", "err", dc.EVERY), 20.0)[0] == 0
    assert rows.outcome(dc.Claim("s", "", "STL", "A", "err", dc.EVERY), 20.0)[0] == -1
    assert rows.outcome(dc.Claim("s", "", "B", "STL", "err", dc.EVERY), 5.0) == (None, "not run")


def test_readings():
    assert dc.EVERY.rule([1, 1]) == "reproduced" and dc.EVERY.rule([None, 1]).startswith("reproduced at the judged")
    assert dc.EVERY.rule([1, -1]) == "contradicted" and dc.EVERY.rule([1, 0]) == "not shown"
    assert dc.MOST.rule([1, 1, 0]) == "reproduced" and dc.MOST.rule([-1, -1, 1]) == "contradicted"
    assert dc.NOT_EVERY.rule([1, 0]) == "reproduced" and dc.NOT_EVERY.rule([1, 1]) == "contradicted"
    assert dc.WORSE_AT_LARGEST.rule([1, -1]) == "reproduced" and dc.WORSE_AT_LARGEST.rule([-1, None]) == "not judged"


@given(outcomes)
def test_every_is_reproduced_exactly_when_all_fractions_are_judged_better(found):
    assert (dc.EVERY.rule(found) == "reproduced") == all(o == 1 for o in found)
    assert (dc.EVERY.rule(found) == "contradicted") == (-1 in found)


@given(outcomes)
def test_a_claim_and_its_negation_are_never_both_reproduced(found):
    assert not (dc.EVERY.rule(found).startswith("reproduced") and dc.NOT_EVERY.rule(found) == "reproduced")


def test_sections_of_the_committed_results_render(tmp_path):
    texts = dc.write(tmp_path)
    for experiment, text in texts.items():
        assert text.strip(), experiment
        if not text.startswith(("No verdict", "No results", "No fraction")):
            assert ".. list-table::" in text


def test_readings_of_one_fraction():
    assert dc.BETTER_AT_LARGEST.rule([-1, 1]) == "reproduced" and dc.BETTER_AT_LARGEST.rule([1, -1]) == "contradicted"
    assert dc.BETTER_AT_LARGEST.rule([1, 0]) == "not shown" and dc.BETTER_AT_LARGEST.rule([1, None]) == "not judged"
    assert dc.NOT_BETTER_AT_SMALLEST.rule([0, 1]) == dc.NOT_BETTER_AT_SMALLEST.rule([-1, 1]) == "reproduced"
    assert dc.NOT_BETTER_AT_SMALLEST.rule([1, -1]) == "contradicted"
    assert dc.NOT_BETTER_AT_SMALLEST.rule([None, 1]) == "not judged"


@given(outcomes)
def test_better_and_worse_at_the_largest_fraction_are_never_both_reproduced(found):
    assert not (dc.BETTER_AT_LARGEST.rule(found) == "reproduced" and dc.WORSE_AT_LARGEST.rule(found) == "reproduced")


def _rho_rows(fc1: float, change: float = 0.01) -> list[dict]:
    return [{"setting": "A @ 10%", "metric": f"rho_{layer}", "ours": value, "n": 1}
            for layer, value in (("Conv1", 0.9), ("Conv2", 0.8), ("FC1", fc1))] + [
        {"setting": "A @ 10%", "metric": "rho_abs_FC1", "ours": 0.1, "n": 1},
        _row("A", 10, [10.0, 11.0], change=change),
    ]  # fmt: skip


def test_sharing_table_reads_whether_the_top_layer_shares_least():
    table = dc.sharing_table(dc.Rows({"rows": _rho_rows(0.5)}, GATES))
    assert table is not None and "- Conv1\n" in table and "abs" not in table and table.rstrip().endswith("- yes")
    assert dc.sharing_table(dc.Rows({"rows": _rho_rows(0.85)}, GATES)).rstrip().endswith("- no")
    unconverged = dc.sharing_table(dc.Rows({"rows": _rho_rows(0.5, change=0.3)}, GATES))
    assert "yes (uninformative: training converged (0.3))" in unconverged
    assert dc.sharing_table(_rows()) is None


def test_shallow_table_puts_each_feature_kind_beside_the_paper_and_says_why_not_comparable():
    rows = [
        {"setting": f"{m} / {k} feature", "metric": "binary_error_pct", "ours": v, "ours_std": 0.1, "n": 3,
         "paper": p, "comparable": "tasks built otherwise" if m == "STL" else True}
        for m, k, v, p in (("STL", "PCA", 4.25, 16.89), ("STL", "CNN", 0.98, 11.52), ("GO", "PCA", 4.3, 14.0),
                           ("GO", "CNN", 0.97, 9.4))
    ]  # fmt: skip
    text = dc.shallow_table({"experiment": "dmtrl_shallow", "command": "c", "rows": rows})
    assert "- PCA feature (ours)\n" in text and "- CNN feature (paper)\n" in text
    assert "   * - GO\n     - 4.30 ± 0.10 (n=3)\n     - 14\n     - 0.97 ± 0.10 (n=3)\n     - 9.4\n" in text
    assert "Not comparable with the paper's numbers: tasks built otherwise." in text


def test_new_readings_of_one_fraction():
    assert dc.BETTER_AT_SMALLEST.rule([1, -1]) == "reproduced" and dc.BETTER_AT_SMALLEST.rule([0, 1]) == "not shown"
    assert dc.BETTER_AT_SMALLEST.rule([-1, 1]) == "contradicted"
    assert dc.LEVEL_AT_LARGEST.rule([1, 0]) == "reproduced" and dc.LEVEL_AT_LARGEST.rule([0, 1]) == "contradicted"


def _shallow(errors: dict[str, list[float]]) -> dict:
    rows = [{"setting": f"{m} / CNN feature", "metric": "binary_error_pct", "ours": sum(e) / len(e), "n": len(e),
             "per_repeat": e} for m, e in errors.items()]  # fmt: skip
    return {"rows": rows, "checks": []}


def _mnist(tt: list[float], change: float = 0.01) -> dict:
    def row(method: str, errors: list[float], c: float = 0.01) -> dict:
        return {**_row(method, 1, errors, c), "metric": "binary_error_pct"}

    rows = [row("STL", [1.5] * 5), row("DMTRL-LAF", [1.0, 1.1, 0.9, 1.0, 1.0]),
            row("DMTRL-Tucker", [1.0, 1.1, 0.9, 1.0, 1.0]), row("DMTRL-TT", tt, change)]  # fmt: skip
    return {"rows": rows}


def test_deep_against_the_best_shallow_method_is_paired_by_training_draw():
    gates = (Gate("training converged", key="train_loss_change_last10pct", below=0.02, metric="binary_error_pct"),)
    # The best classic method is the lowest mean; the first three deep repeats pair with its three.
    shallow = _shallow({"Evgeniou & Pontil (2004)": [1.4, 1.5, 1.3], "Argyriou et al. (2008)": [1.2, 1.3, 1.25]})
    text = dc.deep_vs_shallow(_mnist([1.0, 1.1, 0.9, 9.0, 9.0]), shallow, gates)
    assert (
        "(``dmtrl_shallow``: Argyriou et al. (2008))" in text
        and "Verdict (every DMTRL net better): **reproduced**" in text
    )
    assert "+ −0.25 ± 0.05 (n=3)" in text  # DMTRL-TT: the repeats 3 and 4 (errors 9.0) have no shallow partner
    assert "1.00 against 1.25 (the 3 paired repeats)" in text
    worse = dc.deep_vs_shallow(_mnist([1.5, 1.6, 1.4, 1.0, 1.0]), shallow, gates)
    assert "**contradicted**" in worse
    unconverged = dc.deep_vs_shallow(_mnist([1.0, 1.1, 0.9, 1.0, 1.0], change=0.5), shallow, gates)
    assert "not judged: training converged" in unconverged and "**reproduced at the judged nets only**" in unconverged
    assert "not judged yet" in dc.deep_vs_shallow({"rows": []}, shallow, gates)


def test_a_file_without_a_finished_fraction_renders_no_empty_table():
    text = dc.section({"experiment": "dmtrl_mnist", "protocol": "v2", "command": "c", "rows": []}, GATES, ())
    assert "No fraction" in text and "list-table" not in text


def test_doctests():
    assert doctest.testmod(dc).failed == 0


def test_a_reading_at_the_largest_fraction_needs_two_fractions():
    assert dc.LEVEL_AT_LARGEST.rule([0]).startswith("not judged") and dc.BETTER_AT_LARGEST.rule([1]).startswith("not")
    assert dc.BETTER_AT_SMALLEST.rule([1]) == "reproduced"


def test_claim_verdicts_group_a_sentence_and_give_each_comparison_its_verdict():
    claims = (
        dc.Claim("Sec. x", "A and B beat STL", "A", "STL", "err", dc.EVERY),
        dc.Claim("Sec. x", "A and B beat STL", "B", "STL", "err", dc.EVERY),
    )
    result = {"protocol": "v1", "rows": [r for f in (5, 20) for r in _rows().by.get(("STL", f), [])]}
    result["rows"] += [r for key, rs in _rows().by.items() if key[0] != "STL" for r in rs]
    (line,) = dc.claim_verdicts(result, GATES, claims)
    # A: not judged at 5 % (unconverged), better at 20 %; B: not run at 5 %, within 2 SE at 20 %.
    assert line == [
        "Sec. x: A and B beat STL",
        "A vs STL: reproduced at the judged fractions only; B vs STL: not shown",
    ]
    assert dc.claim_verdicts(None, GATES, claims)[0][1].count("pending") == 2


def test_the_summary_has_one_line_per_sentence_of_each_experiment():
    text = dc.summary({name: None for name in (*dc.CLAIMS, "dmtrl_shallow")})
    lines = {(e, f"{c.source}: {c.sentence}") for e, claims in dc.CLAIMS.items() for c in claims}
    assert text.count("   * - ``dmtrl") == len(lines) + 1  # and App. A's deep-against-shallow line
    assert all(f"- {sentence}\n" in text for _, sentence in lines) and dc.DEEP_VS_SHALLOW in text
    assert "reproduced" not in text.split(".. list-table::")[1] and "pending" in text


def test_the_summary_carries_the_verdicts_of_the_results_it_is_given(monkeypatch):
    gates = (Gate("training converged", key="train_loss_change_last10pct", below=0.02, metric="binary_error_pct"),)
    monkeypatch.setattr(dc, "registered_gates", lambda experiment: gates)
    shallow = _shallow({"Argyriou et al. (2008)": [1.2, 1.3, 1.25]})
    mnist = {**_mnist([1.0, 1.1, 0.9, 9.0, 9.0]), "protocol": "v2"}
    text = dc.summary({"dmtrl_mnist": mnist, "dmtrl_shallow": shallow, "dmtrl_faces": {"rows": []}})
    assert "every DMTRL net: reproduced" in text
    # Its rows hold no balanced or multi-class error: those claims are judged at no fraction.
    assert "UD-MTL vs STL: not judged (at no fraction)" in text
    assert "predates the protocol" in text and "dmtrl_omniglot" in text
