"""The DMTRL reproductions' tables and claim-by-claim verdicts of ``docs/factorized.rst``, from the results.

Run by ``docs/conf.py`` at every build: writes ``docs/results/dmtrl_<experiment>_claims.inc`` for
each experiment in :data:`CLAIMS`, which the DMTRL page includes. Every number comes from
``results/dmtrl_<experiment>.json``.

*Gates per fraction.* A results file's own checks mark every row a failed gate covers (a per-row
gate: every row that fails it). Here the experiment's registered gates (``examples/dmtrl``) are
re-evaluated on the rows a cell stands on — its method's rows and the single-task (STL) rows at the same fraction — so
a fraction whose runs pass is judged even where another fraction's runs fail. A gate that matches
none of those rows does not apply to them.

*Verdicts.* A comparison of method A with method B at one fraction is the same-repeat difference of
their test errors (:func:`mtlkit.metrics.paired_gain`; the repeats of one fraction share their
training draw): A is better (``+``) or worse (``−``) when the mean difference is beyond two standard
errors, else within (``=``); a fraction where a gate fails is not judged. Each claim is a reading of
the paper's sentence over the judged fractions (:class:`Reading`); with three repeats two standard
errors is a loose bar (a 95 % t-interval is 4.3 standard errors wide), so a verdict is a hint.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the docs build from a checkout: render with this checkout's mtlkit

from generate_results import _rst_table  # noqa: E402

from mtlkit.experiments import discover  # noqa: E402
from mtlkit.gates import Gate  # noqa: E402
from mtlkit.metrics import paired_gain  # noqa: E402
from mtlkit.results import failed_gates  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
STL = "STL"
_AT = re.compile(r"^(?P<method>.+) @ (?P<fraction>[0-9.]+)%$")

#: One fraction's outcome of a comparison: +1 better, -1 worse, 0 within two standard errors, None not judged.
Outcome = int | None
MARK = {1: "+", -1: "−", 0: "="}


@dataclass(frozen=True)
class Reading:
    """How a claim's sentence is read over the judged fractions: a name, and the rule giving its verdict."""

    words: str
    rule: Callable[[list[Outcome]], str]


def _judged(outcomes: list[Outcome]) -> list[int]:
    return [o for o in outcomes if o is not None]


def _every(outcomes: list[Outcome], unit: str = "fractions") -> str:
    judged = _judged(outcomes)
    if -1 in judged:
        return "contradicted"
    if judged and all(o == 1 for o in judged):
        return "reproduced" if len(judged) == len(outcomes) else f"reproduced at the judged {unit} only"
    return "not shown"


def _most(outcomes: list[Outcome]) -> str:
    judged = _judged(outcomes)
    wins, losses = judged.count(1), judged.count(-1)
    if judged and wins > len(judged) / 2:
        return "reproduced" if len(judged) == len(outcomes) else "reproduced at the judged fractions only"
    return "contradicted" if losses > len(judged) / 2 else "not shown"


def _not_every(outcomes: list[Outcome]) -> str:
    judged = _judged(outcomes)
    if any(o != 1 for o in judged):
        return "reproduced"
    return "contradicted" if len(judged) == len(outcomes) else "not shown"


def _at(position: int, reproduced_by: frozenset[int]) -> Callable[[list[Outcome]], str]:
    """A reading of one fraction (``0`` the smallest, ``-1`` the largest): reproduced when its outcome
    is in ``reproduced_by``, contradicted by a difference beyond 2 SE the other way, else not shown."""

    def rule(outcomes: list[Outcome]) -> str:
        if position == -1 and len(outcomes) < 2:
            return "not judged (the largest fraction is also the smallest)"
        found = outcomes[position] if outcomes else None
        if found is None:
            return "not judged"
        if found in reproduced_by:
            return "reproduced"
        return "contradicted" if found != 0 else "not shown"

    return rule


EVERY = Reading("better at every fraction", _every)
MOST = Reading("better at most fractions", _most)
NOT_EVERY = Reading("not better at some fraction", _not_every)
WORSE_AT_LARGEST = Reading("worse at the largest fraction", _at(-1, frozenset({-1})))
BETTER_AT_LARGEST = Reading("better at the largest fraction", _at(-1, frozenset({1})))
NOT_BETTER_AT_SMALLEST = Reading("not better at the smallest fraction", _at(0, frozenset({0, -1})))
BETTER_AT_SMALLEST = Reading("better at the smallest fraction", _at(0, frozenset({1})))
LEVEL_AT_LARGEST = Reading("within 2 SE at the largest fraction", _at(-1, frozenset({0})))


@dataclass(frozen=True)
class Claim:
    """A sentence of the paper, read as: ``ours`` against ``reference`` on ``metric`` (an error, lower is better)."""

    source: str
    sentence: str
    ours: str
    reference: str
    metric: str
    reading: Reading


FACES_GENDER, FACES_AGE = "test_error_gender_pct", "test_error_age_group_pct"
#: MNIST's comparable binary error (class-balanced test sets) and the multi-class error of Fig. 2.
BALANCED, MULTICLASS = "balanced_binary_error_pct", "multiclass_error_pct"
DMTRL = ("DMTRL-LAF", "DMTRL-Tucker", "DMTRL-TT")
CONTROL = "STL + more epochs (control)"
#: The claims of each experiment (its results file ``results/<key>.json``), in the paper's order.
CLAIMS: dict[str, tuple[Claim, ...]] = {
    "dmtrl_mnist": (
        *(Claim("Sec. 4.1", f"All MTL approaches outperform STL ({what})", method, STL, metric, EVERY)
          for metric, what in ((BALANCED, "binary error"), (MULTICLASS, "multi-class error"))
          for method in ("UD-MTL", *DMTRL)),
        *(Claim("Sec. 4.1", "DMTRL-TT and DMTRL-Tucker outperform the best user-defined MTL when the training "
                "data is very small", method, "UD-MTL", BALANCED, BETTER_AT_SMALLEST)
          for method in ("DMTRL-TT", "DMTRL-Tucker")),
        *(Claim("Sec. 4.1", "… and their performance is comparable when the training data is large (read at our "
                "largest fraction)", method, "UD-MTL", BALANCED, LEVEL_AT_LARGEST)
          for method in ("DMTRL-TT", "DMTRL-Tucker")),
        *(Claim("control", "DMTRL beats the extra training alone", method, CONTROL, BALANCED, EVERY)
          for method in DMTRL),
    ),
    "dmtrl_faces": (
        Claim("Sec. 4.2", "Gender: UD-MTL is not consistently better than STL", "UD-MTL", STL, FACES_GENDER,
              NOT_EVERY),
        *(
            Claim("Sec. 4.2", f"Gender: DMTRL (esp. Tucker) consistently outperforms {ref}", method, ref,
                  FACES_GENDER, EVERY)
            for ref in (STL, "UD-MTL") for method in DMTRL
        ),
        *(
            Claim("Sec. 4.2", "Age group: DMTRL generally improves on STL", method, STL, FACES_AGE, MOST)
            for method in DMTRL
        ),
        Claim("Sec. 4.2", "Age group: UD-MTL does not consistently improve on STL", "UD-MTL", STL, FACES_AGE,
              NOT_EVERY),
        Claim("Sec. 4.2", "Age group: UD-MTL reduces performance when the training set is bigger", "UD-MTL",
              STL, FACES_AGE, WORSE_AT_LARGEST),
        *(
            Claim("control", f"({metric.split('_')[2]}) DMTRL beats the extra training alone", method, CONTROL,
                  metric, EVERY)
            for metric in (FACES_GENDER, FACES_AGE) for method in DMTRL
        ),
    ),
    "dmtrl_omniglot": (
        *(Claim("Sec. 4.3", "Our proposed MTL methods surpass the STL baseline in all cases", method, STL,
                "error_pct", EVERY) for method in DMTRL),
        Claim("Sec. 4.3", "User-defined MTL does not work well when the training data is very small", "UD-MTL",
              STL, "error_pct", NOT_BETTER_AT_SMALLEST),
        Claim("Sec. 4.3", "… but does help when the training fraction is larger than 50 % (read at our largest "
              "fraction)", "UD-MTL", STL, "error_pct", BETTER_AT_LARGEST),
        *(Claim("control", "DMTRL beats the extra training alone", method, CONTROL, "error_pct", EVERY)
          for method in DMTRL),
    ),
}  # fmt: skip


def split_setting(setting: str) -> tuple[str, float] | None:
    """``"DMTRL-TT @ 20%"`` → ``("DMTRL-TT", 20.0)``; ``None`` for a setting without a fraction.

    >>> split_setting("STL + more epochs (control) @ 5%"), split_setting("STL")
    (('STL + more epochs (control)', 5.0), None)
    """
    match = _AT.match(setting)
    return (match["method"], float(match["fraction"])) if match else None


class Rows:
    """A results file's rows by method, fraction and metric, with the experiment's gates per fraction."""

    def __init__(self, result: dict[str, Any], gates: Sequence[Gate]) -> None:
        self.result, self.gates = result, tuple(gates)
        self.by: dict[tuple[str, float], list[dict[str, Any]]] = {}
        for row in result["rows"]:
            split = split_setting(str(row["setting"]))
            if split is not None:
                self.by.setdefault(split, []).append(row)
        self.fractions = sorted({f for _, f in self.by})
        self.methods = list(dict.fromkeys(m for m, _ in self.by))

    def row(self, method: str, fraction: float, metric: str) -> dict[str, Any] | None:
        return next((r for r in self.by.get((method, fraction), []) if r["metric"] == metric), None)

    def failed(self, methods: Sequence[str], fraction: float) -> list[str]:
        """The gates failing on ``methods`` at ``fraction``, each with its measured value.

        A gate reads the rows of ``methods`` it matches (a row's own training: converged, shares); one
        that matches none of them reads the STL rows of the fraction (the baseline they are judged on).
        """
        own = [r for m in dict.fromkeys(methods) for r in self.by.get((m, fraction), [])]
        baseline = self.by.get((STL, fraction), [])
        out = []
        for gate in self.gates:
            check = gate.evaluate(own if any(gate.matches(r) for r in own) else baseline)
            if check.get("note") == "no row matches" or check["passed"]:
                continue
            measured = check["note"] if check["value"] is None else f"{check['value']:.4g}"
            out.append(f"{gate.name} ({measured})")
        return out

    def outcome(self, claim: Claim, fraction: float) -> tuple[Outcome, str]:
        """The comparison of ``claim`` at one fraction and its table cell."""
        ours, ref = self.row(claim.ours, fraction, claim.metric), self.row(claim.reference, fraction, claim.metric)
        if ours is None or ref is None:
            return None, "not run"
        failed = self.failed([claim.ours, claim.reference], fraction)
        if failed:
            return None, "not judged: " + "; ".join(failed)
        g = paired_gain(ours["per_repeat"], ref["per_repeat"])
        if g["beyond_2_standard_errors"] is None:
            return None, f"{_num(g['gain'])} (n=1: no spread)"
        sign = 0 if not g["beyond_2_standard_errors"] else 1 if g["gain"] < 0 else -1  # lower error is better
        return sign, f"{MARK[sign]} {_num(g['gain'])} ± {g['standard_error']:.2f} (n={len(ours['per_repeat'])})"


def _num(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def results_table(rows: Rows, metrics: Sequence[str]) -> str:
    """Mean ± std (n) of every method × metric × fraction, marked where a gate fails at that fraction."""
    header = ["method", *[f"{m} @ {f:g} %" for f in rows.fractions for m in metrics]]
    body = []
    for method in rows.methods:
        cells = [method]
        for fraction in rows.fractions:
            failed = rows.failed([method], fraction)
            for metric in metrics:
                row = rows.row(method, fraction, metric)
                if row is None:
                    cells.append("—")
                    continue
                text = f"{row['ours']:.2f}" + (f" ± {row['ours_std']:.2f}" if row.get("ours_std") is not None else "")
                text += f" (n={row['n']})"
                cells.append(f"uninformative: {'; '.join(failed)} [{text}]" if failed else text)
        body.append(cells)
    return _rst_table(header, body)


def sharing_table(rows: Rows, prefix: str = "rho_") -> str | None:
    """Fig. 4's sharing pattern: ρ per layer (metrics ``rho_<layer>``, in layer order) of each method, and
    whether the top layer shares least ("more sharing in the bottom layers, less in the top one").

    ρ is stored for the first repeat only, so this is one net per cell (n = 1): a hint, not a test.
    ``None`` when the results hold no ρ.
    """
    metrics = list(dict.fromkeys(r["metric"] for rs in rows.by.values() for r in rs if r["metric"].startswith(prefix)))
    metrics = [m for m in metrics if not m.startswith(prefix + "abs_")]
    if not metrics:
        return None
    body = []
    for (method, fraction), found in rows.by.items():
        rho = {r["metric"]: r["ours"] for r in found if r["metric"] in metrics}
        if len(rho) != len(metrics):
            continue
        values = [rho[m] for m in metrics]
        top_least = all(values[-1] < v for v in values[:-1])
        failed = rows.failed([method], fraction)
        verdict = ("yes" if top_least else "no") + (f" (uninformative: {'; '.join(failed)})" if failed else "")
        body.append([f"{method} @ {fraction:g} %", *[f"{v:.2f}" for v in values], verdict])
    layers = [m.removeprefix(prefix) for m in metrics]
    header = ["net (repeat 0)", *layers, f"{layers[-1]} shares least"]
    return _rst_table(header, body)


def claims_table(rows: Rows, claims: Sequence[Claim]) -> str:
    header = ["claim", "comparison", *[f"@ {f:g} %" for f in rows.fractions], "verdict"]
    body = []
    for claim in claims:
        found = [rows.outcome(claim, f) for f in rows.fractions]
        body.append(
            [
                f"{claim.source}: {claim.sentence}",
                f"{claim.ours} vs {claim.reference}, {claim.metric} ({claim.reading.words})",
                *[cell for _, cell in found],
                claim.reading.rule([o for o, _ in found]),
            ]
        )
    return _rst_table(header, body)


def section(result: dict[str, Any], gates: Sequence[Gate], claims: Sequence[Claim]) -> str:
    if result.get("protocol") is None:
        return (
            f"No verdict: ``results/{result['experiment']}.json`` predates the protocol now in the code "
            f"(``{result['command']}`` rewrites it).\n"
        )
    rows = Rows(result, gates)
    if not rows.fractions:
        return (
            f"No fraction of ``results/{result['experiment']}.json`` has finished yet (protocol "
            f"``{result['protocol']}``): a fraction's rows appear once all its repeats have run.\n"
        )
    note = (
        f"Generated from ``results/{result['experiment']}.json`` (``{result['command']}``, protocol "
        f"``{result['protocol']}``). Test error in %, mean ± std over repeats. A cell is uninformative where "
        "a gate fails on its method's rows at that fraction (a gate about the baseline: on the STL rows). "
        "Comparisons: the same-repeat "
        "difference of test errors, ours − reference, ± its standard error; ``+`` better and ``−`` worse "
        "beyond two standard errors, ``=`` within."
    )
    metrics = list(dict.fromkeys(claim.metric for claim in claims))
    parts = [note, results_table(rows, metrics), claims_table(rows, claims)]
    sharing = sharing_table(rows)
    if sharing is not None:
        parts += [
            "Sharing strength ρ per layer (Eq. 9, the paper's softmax normalisation), from the first repeat:",
            sharing,
        ]
    return "\n\n".join(parts) + "\n"


@cache
def registered_gates(experiment: str) -> tuple[Gate, ...]:
    return discover(ROOT / "examples" / "dmtrl")[experiment.replace("_", "-")].gates


def shallow_table(result: dict[str, Any]) -> str:
    """App. A's table from ``dmtrl_shallow``'s rows (``"<method> / <kind> feature"``): binary error,
    mean ± std (n) per feature kind, beside the paper's number and whether the two are comparable."""
    kinds = list(dict.fromkeys(str(r["setting"]).split(" / ")[1] for r in result["rows"]))
    methods = list(dict.fromkeys(str(r["setting"]).split(" / ")[0] for r in result["rows"]))
    by = {tuple(str(r["setting"]).split(" / ")): r for r in result["rows"]}
    body = []
    for method in methods:
        cells = [method]
        for kind in kinds:
            row = by[method, kind]
            cells += [f"{row['ours']:.2f} ± {row['ours_std']:.2f} (n={row['n']})", f"{row['paper']:g}"]
        body.append(cells)
    header = ["method", *[c for kind in kinds for c in (f"{kind} (ours)", f"{kind} (paper)")]]
    reasons = sorted({str(r["comparable"]) for r in result["rows"] if r["comparable"] is not True})
    note = f"Generated from ``results/{result['experiment']}.json`` (``{result['command']}``). Binary error in %. " + (
        "Not comparable with the paper's numbers: " + "; ".join(reasons) + "." if reasons else ""
    )
    return note + "\n\n" + _rst_table(header, body) + "\n"


CLASSIC = ("Evgeniou & Pontil (2004)", "Argyriou et al. (2008)", "Kumar & Daumé III (2012)")
DEEP_VS_SHALLOW = (
    "App. A: our DMTRL methods still outperform the best classic methods, even when they are enhanced by CNN features"
)


def deep_vs_shallow(mnist: dict[str, Any], shallow: dict[str, Any], gates: Sequence[Gate]) -> str:
    """App. A's claim as a table and its verdict (see :func:`deep_vs_shallow_verdict`)."""
    return deep_vs_shallow_verdict(mnist, shallow, gates)[1]


def deep_vs_shallow_verdict(mnist: dict[str, Any], shallow: dict[str, Any], gates: Sequence[Gate]) -> tuple[str, str]:
    """App. A's claim: each DMTRL net (``dmtrl_mnist`` at its smallest fraction) against the best classic
    method on CNN features (``dmtrl_shallow``, lowest mean error), paired by training draw.

    Both experiments draw repeat ``i``'s training fraction with seed ``i``, so their first common
    repeats share the draw; the metric is the binary error on one-vs-all test sets in both, on all
    10,000 test images for the deep nets and on ``dmtrl_shallow``'s fixed test subset. A DMTRL net
    counts as better when its error is lower beyond two standard errors of the paired difference.
    """
    rows = Rows(mnist, gates)
    if not rows.fractions:
        return "pending", f"*{DEEP_VS_SHALLOW}*: not judged yet, ``dmtrl_mnist`` has no finished fraction.\n"
    fraction = rows.fractions[0]
    by = {str(r["setting"]): r for r in shallow["rows"] if r["metric"] == "binary_error_pct"}
    classic = [by[f"{m} / CNN feature"] for m in CLASSIC if f"{m} / CNN feature" in by]
    best = min(classic, key=lambda r: r["ours"])
    shallow_failed = failed_gates(shallow, best)
    body, outcomes = [], []
    for method in DMTRL:
        deep = rows.row(method, fraction, "binary_error_pct")
        if deep is None:
            body.append([method, "not run", "—"])
            outcomes.append(None)
            continue
        failed = rows.failed([method], fraction) + shallow_failed
        n = min(len(deep["per_repeat"]), len(best["per_repeat"]))
        g = paired_gain(deep["per_repeat"][:n], best["per_repeat"][:n])
        if failed or g["beyond_2_standard_errors"] is None:
            outcome: Outcome = None
            cell = "not judged: " + ("; ".join(failed) if failed else "one common repeat")
        else:
            outcome = 0 if not g["beyond_2_standard_errors"] else 1 if g["gain"] < 0 else -1
            cell = f"{MARK[outcome]} {_num(g['gain'])} ± {g['standard_error']:.2f} (n={n})"
        outcomes.append(outcome)
        means = [sum(errors[:n]) / n for errors in (deep["per_repeat"], best["per_repeat"])]
        body.append([method, f"{means[0]:.2f} against {means[1]:.2f} (the {n} paired repeats)", cell])
    verdict = _every(outcomes, unit="nets")
    note = (
        f"*{DEEP_VS_SHALLOW}* — each DMTRL net at {fraction:g} % (``dmtrl_mnist``) against the best classic method on "
        f"CNN features (``dmtrl_shallow``: {str(best['setting']).split(' / ')[0]}), binary error in % on one-vs-all "
        "test sets, paired by training draw (the same seeds), ``+`` better beyond two standard errors. "
        f"Verdict (every DMTRL net better): **{verdict}**."
    )
    table = _rst_table(["DMTRL net", "mean error: deep against shallow", "difference"], body)
    return verdict, note + "\n\n" + table


def claim_verdicts(result: dict[str, Any] | None, gates: Sequence[Gate], claims: Sequence[Claim]) -> list[list[str]]:
    """One line per sentence of ``claims`` (its comparisons grouped): ``[sentence, verdicts]``."""
    rows = None if result is None or result.get("protocol") is None else Rows(result, gates)
    grouped: dict[str, list[str]] = {}
    for claim in claims:
        if result is not None and rows is None:
            verdict = "pending (the results file predates the protocol)"
        elif rows is None or not rows.fractions:
            verdict = "pending (no finished fraction)"
        else:
            outcomes = [rows.outcome(claim, f)[0] for f in rows.fractions]
            judged = any(o is not None for o in outcomes)
            verdict = claim.reading.rule(outcomes) if judged else "not judged (at no fraction)"
        grouped.setdefault(f"{claim.source}: {claim.sentence}", []).append(
            f"{claim.ours} vs {claim.reference}: {verdict}"
        )
    return [[sentence, "; ".join(verdicts)] for sentence, verdicts in grouped.items()]


def summary(results: dict[str, dict[str, Any] | None]) -> str:
    """Every claim of the three experiments of :data:`CLAIMS` and App. A's, with its verdicts, in one table.

    ``results`` maps ``dmtrl_mnist``, ``dmtrl_faces``, ``dmtrl_omniglot`` and ``dmtrl_shallow`` to their
    results (``None`` where a file is missing).
    """
    body = []
    for experiment, claims in CLAIMS.items():
        for sentence, verdicts in claim_verdicts(results.get(experiment), registered_gates(experiment), claims):
            body.append([f"``{experiment}``", sentence, verdicts])
        if experiment == "dmtrl_mnist":
            mnist, shallow = results.get("dmtrl_mnist"), results.get("dmtrl_shallow")
            verdict = "pending (no results file)"
            if mnist is not None and shallow is not None:
                verdict = deep_vs_shallow_verdict(mnist, shallow, registered_gates("dmtrl_mnist"))[0]
            body.append(["``dmtrl_mnist`` + ``dmtrl_shallow``", DEEP_VS_SHALLOW, f"every DMTRL net: {verdict}"])
    note = (
        "Every claim judged below, with its verdict per comparison (generated from the results files by "
        "``docs/dmtrl_claims.py``; each experiment's section has the numbers, spreads and n). A verdict follows "
        "its claim's reading over the judged fractions: a claim that something is better is reproduced by "
        "differences beyond two standard errors, and one that something is *not* better, or comparable, also by "
        "differences within them; *not shown* means the differences do not decide it. A fraction whose rows "
        "fail a gate is not judged."
    )
    return note + "\n\n" + _rst_table(["experiment", "claim", "verdicts"], body) + "\n"


def write(out: Path = OUT) -> dict[str, str]:
    """Write one include file per experiment of :data:`CLAIMS`, App. A's table and the summary; their texts."""
    paths = {name: ROOT / "results" / f"{name}.json" for name in (*CLAIMS, "dmtrl_shallow")}
    results = {name: json.loads(path.read_text()) if path.is_file() else None for name, path in paths.items()}
    out.mkdir(exist_ok=True)
    texts = {}
    shallow, mnist = results["dmtrl_shallow"], results["dmtrl_mnist"]
    if shallow is not None:
        texts["dmtrl_shallow"] = shallow_table(shallow)
        if mnist is not None:
            texts["dmtrl_shallow"] += "\n" + deep_vs_shallow(mnist, shallow, registered_gates("dmtrl_mnist"))
        (out / "dmtrl_shallow_table.inc").write_text(texts["dmtrl_shallow"])
    for experiment, claims in CLAIMS.items():
        result = results[experiment]
        if result is not None:
            text = section(result, registered_gates(experiment), claims)
        else:
            name = paths[experiment].name
            text = f"No results yet: ``mtlkit reproduce {experiment.replace('_', '-')}`` writes ``{name}``.\n"
        (out / f"{experiment}_claims.inc").write_text(text)
        texts[experiment] = text
    texts["summary"] = summary(results)
    (out / "dmtrl_claims_summary.inc").write_text(texts["summary"])
    return texts


if __name__ == "__main__":
    for name, text in write().items():
        print(f"== {name}\n{text}")
