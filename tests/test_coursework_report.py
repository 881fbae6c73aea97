"""The coursework report page generated from the results files (docs/coursework_report.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
import coursework_report


def test_report_has_every_task_section_within_the_word_limit():
    text = coursework_report.report()
    for title, _ in coursework_report.SECTIONS.values():
        assert f"\n{title}\n" in text
    assert coursework_report.prose_words(text) <= coursework_report.WORD_LIMIT


def test_prose_words_skips_tables_and_directives():
    text = "Title\n=====\n\none two three\n\n.. list-table::\n   :header-rows: 1\n\n   * - a b c\n     - d\n\nfour\n"
    assert coursework_report.prose_words(text) == 5  # Title, one two three, four


def test_rows_of_a_failed_gate_are_uninformative_and_brief_numbers_are_illustrations():
    result = {
        "mode": "reduced",
        "mtlkit_commit": "abc",
        "protocol": "v2",
        "figures": [],
        "checks": [{"name": "training converged", "passed": False, "settings": "MTL*", "metric": "*"}],
        "rows": [
            {
                "setting": "MTL λ=0.5",
                "metric": "test_acc_item",
                "ours": 0.9,
                "ours_std": 0.01,
                "n": 3,
                "brief_says": 0.91,
            },
            {"setting": "STL wide (MTL trunk)", "metric": "test_acc_item", "ours": 0.8, "ours_std": 0.02, "n": 3},
        ],
    }
    text = "\n".join(coursework_report.section(6, result))
    assert "uninformative: training converged" in text and "0.91 (illustration)" in text
    assert "0.8 ± 0.02 (n=3)" in text and "Failed sanity gates" in text
