"""Results schema v2, sanity gates and the rules that keep the docs tables from misleading."""

import json
import math
from pathlib import Path

import pytest
from helpers import docs_generator
from hypothesis import given
from hypothesis import strategies as st

from mtlkit.experiments import discover
from mtlkit.gates import Gate, last_fraction_change, relative_fall
from mtlkit.results import ResultsFile, failed_gates, record_commits, validate

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "path", sorted(p for p in (ROOT / "results").glob("*.json") if "benchmarks" not in p.name), ids=lambda p: p.name
)
def test_every_committed_results_file_validates(path):
    data = json.loads(path.read_text())
    assert validate(data) == []
    assert data["mode"] in ("reduced", "full"), "quick results must not be committed"


@pytest.fixture(scope="module")
def registry():
    return discover(ROOT / "examples")


@pytest.mark.parametrize(
    "path", sorted(p for p in (ROOT / "results").glob("*.json") if "benchmarks" not in p.name), ids=lambda p: p.name
)
def test_committed_checks_are_the_registered_gates_on_the_committed_rows(path, registry):
    data = json.loads(path.read_text())
    name = data["experiment"].replace("_", "-")
    if name not in registry:
        pytest.skip(f"{path.name} is not written by a registered experiment")
    fresh = [gate.evaluate(data["rows"]) for gate in registry[name].gates]
    assert data["checks"] == fresh, f"stale checks: run `mtlkit check {name}`"


def _results(tmp_path, gates=()):
    return ResultsFile(tmp_path / "x.json", experiment="x", seed_file="s.txt", command="c", mode="reduced", gates=gates)


def test_a_spread_needs_its_n(tmp_path):
    results = _results(tmp_path)
    with pytest.raises(ValueError, match="needs n"):
        results.add_row("a", "acc", 0.5, ours_std=0.1)
    with pytest.raises(ValueError, match="at least 2 runs"):
        results.add_row("a", "acc", 0.5, ours_std=0.1, n=1)
    results.add_row("a", "acc", 0.5, ours_std=0.1, per_repeat=[0.4, 0.5, 0.6])
    assert results.get("a", "acc")["n"] == 3


def test_comparable_must_be_true_or_a_reason(tmp_path):
    results = _results(tmp_path)
    for bad in (False, "", None, 0):
        with pytest.raises(ValueError, match="comparable"):
            results.add_row("a", "acc", 0.5, paper=0.6, comparable=bad)


def test_validate_names_each_problem():
    problems = validate(
        {
            "schema": 2,
            "experiment": "x",
            "seed_file": "s",
            "command": "c",
            "mode": "fast",
            "deviations": [],
            "checks": [{"name": "g"}],
            "hardware": "h",
            "wall_time_s": 1.0,
            "seeds": [],
            "rows": [
                {"setting": "a", "metric": "m", "ours": "1", "n": 0, "comparable": True},
                {"setting": "a", "metric": "m", "ours": 1, "n": 1, "comparable": True},
            ],
        }
    )
    text = "\n".join(problems)
    for expected in (
        "mode must be one of",
        "checks[0] lacks",
        "n must be a positive integer",
        "ours must be a number",
        "duplicate row",
    ):
        assert expected in text


def test_gates_are_evaluated_on_every_save_and_a_failed_one_covers_its_rows(tmp_path):
    gate = Gate("baseline trains", key="ours", below=40.0, settings="STL*")
    results = _results(tmp_path, gates=[gate])
    results.add_row("STL", "error", 12.0)
    assert results.data["checks"][0]["passed"] is True
    results.add_row("STL big", "error", 88.0)
    on_disk = json.loads((tmp_path / "x.json").read_text())
    assert on_disk["checks"][0] == {**on_disk["checks"][0], "passed": False, "value": 88.0}
    results.add_row("MTL", "error", 20.0)
    assert failed_gates(on_disk, {"setting": "STL big", "metric": "error"}) == ["baseline trains"]
    assert failed_gates(on_disk, {"setting": "MTL", "metric": "error"}) == []


def test_a_gate_can_mark_more_rows_than_it_reads():
    gate = Gate("source trains", key="ours", above=40.0, settings="Independent", metric="fine", marks="*")
    rows = [{"setting": "Independent", "metric": "fine", "ours": 21.0}, {"setting": "Reuse", "metric": "coarse"}]
    check = gate.evaluate(rows)
    assert check["passed"] is False and check["value"] == 21.0
    assert failed_gates({"checks": [check]}, rows[1]) == ["source trains"]


def test_a_gate_nobody_measured_fails():
    gate = Gate("converged", key="train_loss_change_last10pct", below=0.02)
    rows = [{"setting": "a", "metric": "m", "train_loss_change_last10pct": 0.001}, {"setting": "b", "metric": "m"}]
    assert gate.evaluate(rows) == {**gate.evaluate(rows), "passed": False, "note": "not measured on 1 of 2 rows"}
    assert gate.evaluate([])["note"] == "no row matches"
    assert gate.evaluate([{**rows[0], "train_loss_change_last10pct": math.nan}])["passed"] is False


@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6), st.just(math.nan)), min_size=1, max_size=20),
       st.floats(-1e6, 1e6))  # fmt: skip
def test_a_per_row_gate_marks_exactly_the_rows_that_fail(values, bound):
    rows = [{"setting": f"s{i}", "metric": "m"} | ({} if v is None else {"v": v}) for i, v in enumerate(values)]
    check = Gate("u", key="v", below=bound, metric="m", per_row=True).evaluate([*rows, {"setting": "o", "metric": "x"}])
    failing = {f"s{i}" for i, v in enumerate(values) if v is None or math.isnan(v) or not v < bound}
    # The per-row verdict and the file-wide one agree on whether the gate passes ...
    assert check["passed"] == (not failing) == Gate("u", key="v", below=bound).evaluate(rows)["passed"]
    # ... but a failure covers only the failing rows (not measured and NaN ones included).
    assert {r["setting"] for r in rows if failed_gates({"checks": [check]}, r)} == failing
    assert failed_gates({"checks": [check]}, {"setting": "o", "metric": "x"}) == []


def test_a_per_row_gate_refuses_marks_and_survives_a_results_file(tmp_path):
    with pytest.raises(ValueError, match="per_row gate marks its failing rows"):
        Gate("g", key="v", below=1.0, per_row=True, marks="*")
    gate = Gate("converged", key="change", below=0.02, per_row=True)
    results = _results(tmp_path, gates=[gate])
    results.add_row("A", "acc", 0.9, change=0.001)
    results.add_row("B", "acc", 0.8, change=0.5)
    on_disk = json.loads((tmp_path / "x.json").read_text())
    assert on_disk["checks"][0]["note"] == "fails on 1 of 2 rows"
    assert [failed_gates(on_disk, r) for r in on_disk["rows"]] == [[], ["converged"]]


@pytest.mark.parametrize("kwargs", [{}, {"below": 1.0, "above": 0.0}, {"below": math.inf}])
def test_a_gate_needs_one_finite_bound(kwargs):
    with pytest.raises(ValueError, match="Gate 'g'"):
        Gate("g", key="ours", **kwargs)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.floats(-1e6, 1e6))
def test_a_gate_reads_the_worst_row(values, bound):
    rows = [{"setting": f"s{i}", "metric": "m", "v": v} for i, v in enumerate(values)]
    upper, lower = Gate("u", key="v", below=bound).evaluate(rows), Gate("l", key="v", above=bound).evaluate(rows)
    assert upper["value"] == max(values) and upper["passed"] == all(v < bound for v in values)
    assert lower["value"] == min(values) and lower["passed"] == all(v > bound for v in values)


@given(st.lists(st.floats(0.1, 100.0), min_size=2, max_size=50), st.floats(0.01, 1.0))
def test_last_fraction_change_is_the_relative_change_over_the_tail(losses, fraction):
    change = last_fraction_change(losses, fraction)
    back = min(len(losses) - 1, max(1, math.ceil(fraction * len(losses))))
    assert change == pytest.approx(abs(losses[-1 - back] - losses[-1]) / losses[-1 - back])
    assert last_fraction_change([2 * x for x in losses], fraction) == pytest.approx(change)  # scale-free
    # On a reference scale the same tail change is divided by that value instead.
    on_first = last_fraction_change(losses, fraction, reference=losses[0])
    assert on_first == pytest.approx(change * losses[-1 - back] / losses[0])


def test_last_fraction_change_of_a_loss_that_reaches_zero():
    curve = [3.0, 0.5, 0.01, 0.0, 0.002, 0.0]  # a hinge loss on separable data, flat at the scale of 3
    assert last_fraction_change(curve) == 1.0  # the tail is relative noise
    assert last_fraction_change(curve, reference=curve[0]) == pytest.approx(0.002 / 3.0)
    assert last_fraction_change([0.0, 0.0], reference=0.0) == 0.0


def test_relative_fall():
    assert relative_fall(4.0, 1.0) == 0.75
    with pytest.raises(ValueError, match="initial"):
        relative_fall(0.0, 1.0)


def _synthetic(tmp_path, monkeypatch):
    gen = docs_generator()
    results = tmp_path / "results"
    results.mkdir()
    data = {
        "schema": 2,
        "experiment": "toy",
        "seed_file": "s.txt",
        "command": "mtlkit reproduce toy --mode reduced",
        "mode": "reduced",
        "deviations": [],
        "hardware": "h",
        "wall_time_s": 1.0,
        "seeds": [0, 1, 2],
        "mtlkit_commit": "abc1234",
        "conclusions": ["MTL wins."],
        "checks": [
            {
                "name": "baseline trains",
                "threshold": "ours < 40",
                "value": 88.0,
                "passed": False,
                "settings": "STL",
                "metric": "*",
            }
        ],
        "rows": [
            {
                "setting": "MTL half-run",
                "metric": "err",
                "ours": 9.0,
                "ours_std": 0.5,
                "n": 2,
                "paper": None,
                "comparable": True,
                "headline": True,
            },
            {
                "setting": "STL",
                "metric": "err",
                "ours": 88.0,
                "ours_std": None,
                "n": 1,
                "paper": 12.0,
                "comparable": True,
                "headline": True,
            },
            {
                "setting": "MTL",
                "metric": "err",
                "ours": 10.5,
                "ours_std": 0.25,
                "n": 3,
                "paper": 11.5,
                "comparable": "different metric",
                "headline": True,
                "mtlkit_commit": "def5678",
            },
            {
                "setting": "MTL",
                "metric": "acc",
                "ours": 0.9,
                "ours_std": 0.01,
                "n": 3,
                "paper": 0.91,
                "comparable": True,
                "headline": True,
            },
        ],
    }
    (results / "toy.json").write_text(json.dumps(data))
    monkeypatch.setattr(gen, "RESULTS", results)
    monkeypatch.setattr(gen, "PAGES", tmp_path / "pages")
    return gen


def test_tables_show_n_hide_non_comparable_paper_numbers_and_flag_failed_gates(tmp_path, monkeypatch):
    gen = _synthetic(tmp_path, monkeypatch)
    readme = gen.readme_section()
    assert "| toy | MTL | acc | 0.9 ± 0.01 (n=3) | 0.91 | reduced | abc1234 |" in readme
    assert "| toy | MTL | err | 10.5 ± 0.25 (n=3) | not comparable: different metric | reduced | def5678 |" in readme
    assert "11.5" not in readme
    assert "| toy | STL |" not in readme, "a row whose gate failed is no headline"
    assert "Not shown: headline rows whose sanity gates failed" in readme
    assert "toy (baseline trains, seeds pending: n < 3)" in readme
    assert "MTL half-run" not in readme, "a headline with seeds still to run is no claim yet"
    gen.write_pages()
    page = (tmp_path / "pages" / "toy.rst").read_text()
    assert "uninformative: baseline trains [88 (n=1)]" in page  # the number stays visible, marked
    assert "NO: its rows are uninformative" in page
    assert ".. warning:: These conclusions come from a run whose sanity gates failed (baseline trains)" in page
    assert "not comparable: different metric" in page and "11.5" not in page


def test_an_experiment_from_an_issue_has_no_seed_file_and_says_its_origin(tmp_path, monkeypatch):
    path = tmp_path / "bench.json"
    results = ResultsFile(path, experiment="bench", seed_file=None, origin="issue 18", command="c", mode="reduced")
    results.add_row("a", "acc", 0.5)
    data = json.loads(path.read_text())
    assert (data["seed_file"], data["origin"]) == (None, "issue 18") and validate(data) == []
    for seed_file, origin in (("s.txt", "issue 18"), (None, None), (None, " ")):
        with pytest.raises(ValueError, match=r"seed_file|origin"):
            ResultsFile(tmp_path / "y.json", experiment="y", seed_file=seed_file, origin=origin, command="c",
                        mode="reduced")  # fmt: skip
        assert any(
            "seed_file" in p or "origin" in p for p in validate({**data, "seed_file": seed_file, "origin": origin})
        )
    seed_file_only = {k: v for k, v in data.items() if k != "origin"} | {"seed_file": "s.txt"}
    assert validate(seed_file_only) == [], "a file without origin is a seed experiment's, as before"
    gen = docs_generator()
    monkeypatch.setattr(gen, "RESULTS", tmp_path)
    monkeypatch.setattr(gen, "PAGES", tmp_path / "pages")
    gen.write_pages()
    assert "*Origin:* issue 18 (no seed document)" in (tmp_path / "pages" / "bench.rst").read_text()
    assert ":caption: From issue 18" in (tmp_path / "pages" / "index.rst").read_text()


def test_committed_results_files_name_the_provenance_their_experiment_registers():
    """A file rewritten by a process running older code would carry a stale one: scripts/sync_provenance.py."""
    from mtlkit.experiments import discover

    registered = {exp.name.replace("-", "_"): exp for exp in discover().values()}
    for path in sorted((ROOT / "results").glob("*.json")):
        data = json.loads(path.read_text())
        exp = registered.get(data.get("experiment"))
        if exp is not None and not path.name.startswith("benchmarks"):
            assert (data["seed_file"], data.get("origin")) == (exp.seed_file, exp.origin), path.name


def test_a_results_file_of_another_protocol_starts_afresh(tmp_path):
    path = tmp_path / "demo.json"

    def opened() -> ResultsFile:
        return ResultsFile(path, experiment="demo", seed_file="004_x.txt", command="c", mode="reduced")

    old = opened()
    old.start_protocol("v1")
    old.add_row("STL", "acc", 0.8)
    old.record_done("STL/seed0", 1.0)
    old.set("per_run", {"STL/seed0": {"acc": 0.8}})
    old.set("tsne_seed", 0)
    same = opened()
    same.start_protocol("v1", derived=("tsne_seed",))
    assert same.has("STL", "acc") and same.is_done("STL/seed0") and same.data["per_run"]
    assert same.data["tsne_seed"] == 0
    new = opened()
    new.start_protocol("v2", derived=("tsne_seed",))
    assert new.rows == [] and not new.is_done("STL/seed0") and "per_run" not in new.data
    assert "tsne_seed" not in new.data
    assert json.loads(path.read_text())["protocol"] == "v2"


def test_a_kept_record_is_computed_once_and_keeps_the_commit_that_computed_it(tmp_path, monkeypatch):
    path = tmp_path / "demo.json"

    def opened(commit: str) -> ResultsFile:
        monkeypatch.setattr("mtlkit.results._git_commit", lambda: commit)
        return ResultsFile(path, experiment="demo", seed_file="004_x.txt", command="c", mode="reduced")

    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"acc": 0.8, "cpu_s": 2.0}

    first = opened("aaa1111")
    assert first.kept("STL/seed0", compute) == {"acc": 0.8, "cpu_s": 2.0, "mtlkit_commit": "aaa1111"}
    later = opened("bbb2222")  # a restart by newer code: the record is reused, not recomputed or restamped
    assert later.kept("STL/seed0", compute)["mtlkit_commit"] == "aaa1111" and len(calls) == 1
    later.kept("STL/seed1", compute)
    assert later.is_done("STL/seed1") and later.data["progress"]["STL/seed1"] == 2.0
    assert record_commits(json.loads(path.read_text())) == ["aaa1111", "bbb2222"]
    # A record whose progress entry is gone (an older file) is marked done again when it is reused.
    del later.data["progress"]["STL/seed0"]
    later.save()
    reopened = opened("ccc3333")
    reopened.kept("STL/seed0", compute)
    assert reopened.is_done("STL/seed0") and len(calls) == 2
    with pytest.raises(ValueError, match="cpu_s"):
        reopened.kept("STL/seed2", lambda: {"acc": 0.5})
    assert "STL/seed2" not in reopened.data["per_run"]
