"""Sanity gates: what must be true of a run before its numbers answer the paper's question.

A reproduction whose mechanism never switched on — a baseline that never trained, a
"factorised" net at full rank, an auxiliary loss that never fell — produces numbers, but not an
answer. Each experiment declares its gates when it registers (see
:func:`mtlkit.experiments.register_experiment`); the results file evaluates them on every save
and stores them as ``checks``. The docs tables show each row a failed gate covers as
*uninformative*, never as a result.

A gate reads one field (``key``) of every row whose ``setting`` and ``metric`` match its
:mod:`fnmatch` patterns (``|`` separates alternatives), takes the worst value (the largest for an
upper bound, the smallest for a lower one), and passes when that value meets the bound. Every
matched row must carry the field: a gate that matches no row, or a row without the field, fails
as *not measured*, because a quantity nobody measured cannot vouch for a run.

What a failure marks depends on what the gate is about. A gate on a baseline every comparison
rests on ("single-task nets train") marks every row it covers. A gate on a quantity each row
measures of its own runs ("training converged", with a comparison row carrying the worst of the
runs on both sides) is ``per_row``: each row is judged on its own value, and a failure marks only
the rows that fail, listed in the check's ``failed_rows``; one unconverged network then does not
void a table of converged ones.

Example:
    >>> gate = Gate("baseline trains", key="ours", below=40.0, settings="STL*", metric="test_error_pct")
    >>> rows = [{"setting": "STL", "metric": "test_error_pct", "ours": 12.0},
    ...         {"setting": "STL + DAE", "metric": "test_error_pct", "ours": 38.5},
    ...         {"setting": "MTL", "metric": "test_error_pct", "ours": 85.0}]
    >>> check = gate.evaluate(rows)
    >>> check["value"], check["passed"], check["threshold"]
    (38.5, True, 'ours < 40 (settings STL*, metric test_error_pct)')
    >>> Gate("converged", key="train_loss_change_last10pct", below=0.02).evaluate(rows)["note"]
    'not measured on 3 of 3 rows'
    >>> Gate("MTL trains", key="ours", below=40.0, settings="MTL|UD-MTL").evaluate(rows)["passed"]
    False
    >>> check = Gate("each trains", key="ours", below=40.0, per_row=True).evaluate(rows)
    >>> check["passed"], check["failed_rows"]
    (False, [{'setting': 'MTL', 'metric': 'test_error_pct'}])
    >>> covers(check, rows[0]), covers(check, rows[2])
    (False, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["Gate", "covers", "last_fraction_change", "relative_fall"]


@dataclass(frozen=True)
class Gate:
    """A bound on a measured quantity of a run (see the module docstring).

    Args:
        name: What the gate establishes, e.g. ``"baseline trains"``; shown beside failed rows.
        key: The row field holding the measured value (``"ours"`` or an extra such as
            ``"train_loss_change_last10pct"``).
        below: The value must be strictly below this (an upper bound), or
        above: strictly above this (a lower bound). Exactly one of the two.
        settings, metric: :mod:`fnmatch` patterns (case-sensitive, ``|`` between alternatives)
            of the rows the gate reads and, when it fails, marks uninformative.
        marks: the settings pattern of the rows a failure marks, when wider than those it reads
            (e.g. a source task's accuracy gates every label-reuse row).
        per_row: judge each matched row on its own value; a failure marks only the failing rows
            (not measured ones included). For quantities a row measures of its own runs.
    """

    name: str
    key: str
    below: float | None = None
    above: float | None = None
    settings: str = "*"
    metric: str = "*"
    marks: str | None = None
    per_row: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Gate name must be non-empty")
        if self.per_row and self.marks is not None:
            raise ValueError(f"Gate {self.name!r}: a per_row gate marks its failing rows, not marks={self.marks!r}")
        if (self.below is None) == (self.above is None):
            raise ValueError(f"Gate {self.name!r}: give exactly one of below= / above= ({self.below}, {self.above})")
        bound = self.below if self.below is not None else self.above
        if not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise ValueError(f"Gate {self.name!r}: bound must be a finite number, got {bound!r}")

    @property
    def threshold(self) -> str:
        """The bound in words, e.g. ``"ours < 40 (settings STL*)"``."""
        op, bound = ("<", self.below) if self.below is not None else (">", self.above)
        scope = [
            f"{name} {pattern}"
            for name, pattern in (("settings", self.settings), ("metric", self.metric))
            if pattern != "*"
        ]
        return f"{self.key} {op} {bound:g}" + (f" ({', '.join(scope)})" if scope else "")

    def matches(self, row: Mapping[str, Any]) -> bool:
        return _match(str(row.get("setting", "")), self.settings) and _match(str(row.get("metric", "")), self.metric)

    def evaluate(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """The check record written to a results file's ``checks``."""
        matched = [row for row in rows if self.matches(row)]
        values = [_as_float(row[self.key]) for row in matched if row.get(self.key) is not None]
        record: dict[str, Any] = {
            "name": self.name,
            "threshold": self.threshold,
            "settings": self.settings,
            "metric": self.metric,
        }
        if self.marks is not None:
            record["marks"] = self.marks
        if not matched:
            return {**record, "value": None, "passed": False, "note": "no row matches"}
        if self.per_row:
            failed = [row for row in matched if not self._meets(row.get(self.key))]
            record["failed_rows"] = [{"setting": row.get("setting"), "metric": row.get("metric")} for row in failed]
            measured = [v for v in values if not math.isnan(v)]
            worst = (max(measured) if self.below is not None else min(measured)) if measured else None
            if failed:
                unmeasured = len(matched) - len(measured)
                record["note"] = f"fails on {len(failed)} of {len(matched)} rows" + (
                    f" ({unmeasured} not measured or NaN)" if unmeasured else ""
                )
            return {**record, "value": worst, "passed": not failed}
        if len(values) < len(matched):
            note = f"not measured on {len(matched) - len(values)} of {len(matched)} rows"
            return {**record, "value": None, "passed": False, "note": note}
        if any(math.isnan(v) for v in values):
            return {**record, "value": None, "passed": False, "note": "NaN measured"}
        worst = max(values) if self.below is not None else min(values)
        return {**record, "value": worst, "passed": self._meets(worst)}

    def _meets(self, value: Any) -> bool:
        """Whether one measured value meets the bound (a missing or NaN one does not)."""
        if value is None or math.isnan(_as_float(value)):
            return False
        if self.below is not None:
            return _as_float(value) < self.below
        return _as_float(value) > self.above  # type: ignore[operator]  # __post_init__: above is set when below is not


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"gate fields must be numbers, got {value!r}")
    return float(value)


def covers(check: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether a check record (from :meth:`Gate.evaluate`) speaks for ``row``.

    A per-row check speaks for its ``failed_rows`` only.
    """
    if "failed_rows" in check:
        return {"setting": row.get("setting"), "metric": row.get("metric")} in check["failed_rows"]
    if "marks" in check:
        return _match(str(row.get("setting", "")), check["marks"])
    return _match(str(row.get("setting", "")), check.get("settings", "*")) and _match(
        str(row.get("metric", "")), check.get("metric", "*")
    )


def _match(text: str, patterns: str) -> bool:
    return any(fnmatchcase(text, pattern) for pattern in patterns.split("|"))


def last_fraction_change(losses: Sequence[float], fraction: float = 0.1, reference: float | None = None) -> float:
    r"""Relative change of a loss curve over its last ``fraction`` of epochs.

    .. math:: \frac{|L_{\text{start}} - L_{\text{end}}|}{|L_{\text{ref}}|}

    where :math:`L_{\text{end}}` is the last value and :math:`L_{\text{start}}` the value
    :math:`\lceil f\,E\rceil` epochs before it (at least one epoch, at most the first). A converged run changes by
    a small fraction at the end; a run stopped while still learning does not.

    :math:`L_{\text{ref}}` is :math:`L_{\text{start}}` by default. A loss that reaches zero (a hinge
    loss on separable training data) makes that ratio meaningless — 0.001 → 0.0005 is a 50 % change
    of a curve that has long been flat — so ``reference`` (e.g. the first epoch's loss) measures the
    change on the scale of the whole curve instead.

    Example:
        >>> round(last_fraction_change([4.0, 2.0, 1.0, 0.99, 0.98]), 4)
        0.0101
        >>> round(last_fraction_change([3.0, 0.1, 0.002, 0.001], reference=3.0), 5)
        0.00033
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if len(losses) < 2:
        raise ValueError(f"losses needs at least 2 epochs, got {len(losses)}")
    back = min(len(losses) - 1, max(1, math.ceil(fraction * len(losses))))
    start, end = float(losses[-1 - back]), float(losses[-1])
    scale = start if reference is None else float(reference)
    if scale == 0:
        return 0.0 if end == start else math.inf
    return abs(start - end) / abs(scale)


def relative_fall(initial: float, final: float) -> float:
    r"""How much a quantity fell, as a fraction of where it started: :math:`(L_0 - L_T)/L_0`.

    Example:
        >>> relative_fall(2.0, 0.5)
        0.75
    """
    if initial <= 0:
        raise ValueError(f"initial must be positive, got {initial}")
    return (initial - final) / initial
